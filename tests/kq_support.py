"""Support for tests that run a real keyquorum server process on loopback.

Importable from any test (``pythonpath = ["tests"]`` in pyproject.toml):
``from kq_support import ServerProcess, free_port``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """A keyquorum server started as a child process."""

    data_dir: Path
    port: int
    extra_args: list[str] = field(default_factory=list)
    test_clock: bool = True
    process: subprocess.Popen[bytes] | None = None
    root_token: str = ""
    shares: list[str] = field(default_factory=list, repr=False)
    commitments: list[str] = field(default_factory=list)
    # More environment for the process, and a function run in it before exec (limits).
    env: dict[str, str] = field(default_factory=dict)
    preexec: Callable[[], None] | None = None

    @property
    def addr(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait: bool = True) -> None:
        log = open(self.data_dir.parent / f"server-{self.port}.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "keyquorum", "server", "--data-dir", str(self.data_dir),
             "--listen", f"127.0.0.1:{self.port}",
             *(["--unsafe-test-clock"] if self.test_clock else []),
             "--scheduler-interval", "0.5", *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env}, preexec_fn=self.preexec,
        )
        if wait:
            try:
                self.wait_listening()
            except BaseException:  # late, exited or interrupted: leave no process behind
                self.stop()
                raise

    def wait_listening(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}; see log")
            try:
                httpx.get(f"{self.addr}/v1/sys/health", timeout=1.0)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("server did not start listening")

    def init(self, shares: int = 3, threshold: int = 2, *, force: bool = False,
             custodians: list[str] | None = None) -> dict:
        body: dict = {"shares": shares, "threshold": threshold}
        if force:
            body["force"] = True  # k = n is refused without it
        if custodians is not None:
            body["custodians"] = custodians
        answer = httpx.post(f"{self.addr}/v1/sys/init", json=body, timeout=30)
        answer.raise_for_status()
        body = answer.json()
        self.root_token = body["root_token"]
        self.shares = body["shares"]
        self.commitments = body["commitments"]
        return body

    def unseal(self, shares: list[str] | None = None) -> dict:
        body: dict = {}
        for share in shares if shares is not None else self.shares[:2]:
            answer = httpx.post(f"{self.addr}/v1/sys/unseal", json={"share": share}, timeout=30)
            answer.raise_for_status()
            body = answer.json()
        return body

    def client(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.addr, timeout=30,
                            headers={"Authorization": f"Bearer {token or self.root_token}"})

    def anonymous(self, headers: dict[str, str] | None = None) -> httpx.Client:
        """A client that sends no token (only ``headers``, if given)."""
        return httpx.Client(base_url=self.addr, timeout=30, headers=headers or {})

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def advance_clock(self, seconds: float) -> dict:
        """Move the server's test clock forward and run its scheduler once."""
        with self.client() as http:
            answer = http.post("/v1/sys/unsafe/clock", json={"advance_seconds": seconds})
            answer.raise_for_status()
            return answer.json()


def configured_server(tmp_path: Path, config: dict, **options: object) -> ServerProcess:
    """A server (not started yet) whose ``--config`` file holds ``config``."""
    path = tmp_path / "kq.json"
    path.write_text(json.dumps(config))
    return ServerProcess(data_dir=tmp_path / "data", port=free_port(),  # type: ignore[arg-type]
                         extra_args=["--config", str(path)], **options)
