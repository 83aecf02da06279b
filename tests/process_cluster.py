"""Several real keyquorum server processes as cluster nodes on one PostgreSQL database.

(In-process nodes, for tests that drive each node's clock: tests/cluster_support.py.)

Used by the cluster fault tests (tests/cluster/) and by ``bench/cluster.py``, so the
figures come from the same layout the tests prove things about. Each node is a
``keyquorum server`` process of its own (its own data dir, port, caches and
scheduler) started with ``--config`` naming the shared ``database_url`` and the
password file, as an operator would start one.

Unsealing is the cluster's own: custodians (the test) unseal the first node with
two shares; every further node is enrolled on it as a ``node`` seal through the
custodian ceremony (``POST /v1/sys/seals`` + shares), starts sealed with its node
key, and is handed the root key by the unsealed peer (docs/OPERATIONS.md, "Cluster
nodes"). So a harness that comes up has also shown the enrolled-node hand-off
working between processes.

``ProcessCluster`` is a context manager: leaving it stops every process it started and
drops its database, also when start-up failed half way.
"""

from __future__ import annotations

import contextlib
import json
import signal
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from kq_support import ServerProcess, free_port
from pg_support import PostgresCluster

UNSEAL_BOUND = 30.0
"""Seconds a node may take from its start to unsealed by a peer (a loaded 2-core CI)."""


class Node(ServerProcess):
    """One node: a server process on the cluster's database, named ``name``."""

    def __init__(self, base: Path, name: str, config: dict[str, Any]) -> None:
        directory = base / name
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "kq.json"
        path.write_text(json.dumps({**config, "node_name": name}))
        super().__init__(data_dir=directory / "data", port=free_port(), test_clock=False,
                         extra_args=["--config", str(path)])
        self.name = name

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"server-{self.port}.log"

    def health(self, timeout: float = 2.0) -> int | None:
        """The health route's status, or None when nothing answers (dead, not listening)."""
        try:
            return httpx.get(f"{self.addr}/v1/sys/health", timeout=timeout).status_code
        except httpx.TransportError:
            return None

    def kill(self) -> None:
        """SIGKILL, as a host or process would die: no shutdown, nothing given back."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=15)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class ProcessCluster:
    """``size`` nodes on a fresh database of ``postgres``; node 0 was initialised."""

    def __init__(self, postgres: PostgresCluster, base: Path, size: int = 3, *,
                 link_interval: float = 0.2, config: dict[str, Any] | None = None) -> None:
        self.postgres = postgres
        self.extra = dict(config or {})  # more of every node's config file
        self.base = base
        self.size = size
        self.link_interval = link_interval
        self.database: str | None = None
        self.nodes: list[Node] = []
        self.root_token = ""
        self.shares: list[str] = []

    # -- coming up ---------------------------------------------------------------------

    def __enter__(self) -> ProcessCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    def config(self) -> dict[str, Any]:
        assert self.database is not None
        return {**self.postgres.settings_for(self.database),
                "database_password_file": str(self.postgres.password_file),
                "node_link_interval": self.link_interval, **self.extra}

    def start(self) -> None:
        """The first node initialised and unsealed by shares, the others by hand-off."""
        self.database = self.postgres.create_database()
        first = Node(self.base, "node-1", self.config())
        self.nodes.append(first)
        first.start()
        first.init()
        first.unseal()
        self.root_token, self.shares = first.root_token, first.shares
        with first.client() as http:
            trust = http.get("/v1/audit/public-key").json()["key_id"]
        others = [self._enrolled(f"node-{i + 1}", trust) for i in range(1, self.size)]
        for node in others:  # all at once: their start-ups overlap
            node.start(wait=False)
        for node in others:
            node.wait_listening(UNSEAL_BOUND)
        self.wait_unsealed(others)

    def _enrolled(self, name: str, trust: str) -> Node:
        """A node whose key was enrolled on node 1 by the custodians (not started yet)."""
        from keyquorum.crypto import kem_box

        private_pem, public_pem = kem_box.generate()
        key_file = self.base / f"{name}.key"
        key_file.write_text(private_pem)
        key_file.chmod(0o600)
        with self.nodes[0].client() as http:
            proposed = http.post("/v1/sys/seals", json={"type": "node", "id": name,
                                                        "public_key": public_pem})
            assert proposed.status_code == 200, proposed.text
            nonce = proposed.json()["nonce"]
            for share in self.shares[:2]:
                step = http.post("/v1/sys/seal-add/update",
                                 json={"nonce": nonce, "share": share})
                assert step.status_code == 200, step.text
            assert step.json().get("complete"), step.text
        node = Node(self.base, name, {**self.config(), "node_key_file": str(key_file),
                                      "node_trust_key": trust})
        node.root_token, node.shares = self.root_token, self.shares
        self.nodes.append(node)
        return node

    def wait_unsealed(self, nodes: list[Node] | None = None,
                      bound: float = UNSEAL_BOUND) -> None:
        """Until every one of ``nodes`` (default: all) answers health 200."""
        deadline = time.monotonic() + bound
        for node in nodes if nodes is not None else self.nodes:
            while node.health() != 200:
                if not node.alive():
                    raise RuntimeError(f"{node.name} exited; see {node.log_path}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{node.name} was not unsealed within {bound} s; "
                                       f"see {node.log_path}")
                time.sleep(0.05)

    # -- going down --------------------------------------------------------------------

    def stop(self) -> None:
        """Every process stopped (SIGTERM, then SIGKILL), the database dropped."""
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.stop()
        if self.database is not None:
            with contextlib.suppress(Exception):
                self.postgres.drop_database(self.database)
            self.database = None

    # -- using it ----------------------------------------------------------------------

    def client(self, index: int, timeout: float = 30.0) -> httpx.Client:
        node = self.nodes[index]
        return httpx.Client(base_url=node.addr, timeout=timeout,
                            headers={"Authorization": f"Bearer {self.root_token}"})

    def admin(self) -> Any:
        """A superuser connection to the cluster's database, to read what is stored."""
        assert self.database is not None
        return self.postgres.admin(self.database)

    def logs(self) -> str:
        """The tail of every node's log, for an assertion's message."""
        tails = []
        for node in self.nodes:
            with contextlib.suppress(OSError):
                tails.append(f"--- {node.name}\n{node.log_path.read_text()[-1500:]}")
        return "\n".join(tails)
