"""A real HAProxy (Debian's ``haproxy``) in front of keyquorum nodes, as production runs one.

Used by the failover test and by ``bench/cluster.py``. The configuration is the one
docs/OPERATIONS.md recommends, on loopback and with short check intervals:

- health checks on ``GET /v1/sys/health`` (200 only when the node is unsealed and
  initialised; 503 sealed), every ``check_interval``, each allowed 2 s (a busy node
  answers slowly: a check timeout as short as the interval marks healthy nodes down
  on a loaded machine); two failures mark a node down, two successes bring it back;
- ``retries`` with ``option redispatch``: a request whose *connection* to a node
  fails (refused: the node is dead but not yet marked down) is sent to another
  node. Nothing is retried once a request was sent: a POST is not idempotent, so a
  request in flight on a node that dies fails to its client (502), and only those;
- ``http-reuse never`` towards the nodes: a pooled idle connection to a node that
  died would otherwise take a request with it (HAProxy does not resend a request
  it wrote to a connection that then closed);
- no ``on-marked-down shutdown-sessions``: a node marked down by a slow check
  finishes what it was sent (a node that died has lost its connections anyway).

The stats socket answers ``show stat``: ``states()`` reads each server's state.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from kq_support import free_port

CONFIG = """\
global
    maxconn 4096
    stats socket {socket} mode 600 level admin

defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout queue 5s
    timeout check 2s
    retries 3
    option redispatch 1
    http-reuse never

frontend keyquorum
    bind 127.0.0.1:{port}
    default_backend nodes

backend nodes
    balance roundrobin
    option httpchk GET /v1/sys/health
    http-check expect status 200
    default-server inter {inter_ms}ms fastinter {inter_ms}ms fall 2 rise 2
{servers}
"""


def find_haproxy() -> str | None:
    return shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)


class HAProxy:
    """An ``haproxy`` process balancing ``backends`` (name, port) on a port of its own."""

    def __init__(self, directory: Path, backends: Sequence[tuple[str, int]], *,
                 check_interval: float = 0.2) -> None:
        binary = find_haproxy()
        if binary is None:
            raise RuntimeError("haproxy is missing (Debian: apt-get install haproxy; "
                               "scripts/test installs it)")
        self.binary = binary
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.socket = directory / "haproxy.sock"
        self.config = directory / "haproxy.cfg"
        self.log = directory / "haproxy.log"
        servers = "\n".join(f"    server {name} 127.0.0.1:{port} check"
                            for name, port in backends)
        self.config.write_text(CONFIG.format(socket=self.socket, port=self.port,
                                             inter_ms=round(check_interval * 1000),
                                             servers=servers))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def addr(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> HAProxy:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        """Check the configuration, start in the foreground (``-db``), wait for every
        server to be seen up."""
        subprocess.run([self.binary, "-c", "-q", "-f", str(self.config)], check=True,
                       capture_output=True, timeout=30)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([self.binary, "-db", "-f", str(self.config)],
                                            stdout=log, stderr=subprocess.STDOUT)
        self.wait_states(lambda states: bool(states) and all(
            state == "UP" for state in states.values()))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def states(self) -> dict[str, str]:
        """Each backend server's state as HAProxy sees it (``UP``, ``DOWN``, ``UP 1/2``…)."""
        try:
            with socket.socket(socket.AF_UNIX) as conn:
                conn.settimeout(2)
                conn.connect(str(self.socket))
                conn.sendall(b"show stat\n")
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
        except OSError:
            return {}
        lines = data.decode().splitlines()
        if not lines or not lines[0].startswith("# "):
            return {}
        header = lines[0][2:].split(",")
        states = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(","), strict=False))
            if row.get("pxname") == "nodes" and row.get("svname") not in ("BACKEND", None):
                states[row["svname"]] = row.get("status", "")
        return states

    def wait_states(self, condition: Callable[[dict[str, str]], bool],
                    bound: float = 30.0) -> dict[str, str]:
        """Until ``condition(states)`` holds; fails past ``bound`` seconds."""
        deadline = time.monotonic() + bound
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"haproxy exited; see {self.log}")
            states = self.states()
            if condition(states):
                return states
            if time.monotonic() > deadline:
                raise RuntimeError(f"haproxy's servers stayed {states}")
            time.sleep(0.05)
