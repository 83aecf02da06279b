"""``keyquorum dev`` end to end: warns, writes dev-init.json 0600, serves unsealed, re-unseals."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from http_helpers import b64, create_key, ok, unb64
from kq_support import free_port


def _start(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    handle = open(log, "ab")  # noqa: SIM115 - the child owns it
    return subprocess.Popen(
        [sys.executable, "-m", "keyquorum", "dev", "--data-dir", str(data_dir),
         "--listen", f"127.0.0.1:{port}"],
        stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _wait_ready(process: subprocess.Popen[bytes], addr: str) -> httpx.Response:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"dev server exited with {process.returncode}")
        try:
            return httpx.get(f"{addr}/v1/sys/health", timeout=1)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("dev server did not start")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.server
def test_dev_server_initializes_unseals_and_restarts(tmp_path: Path) -> None:
    data_dir = tmp_path / "dev"
    port = free_port()
    addr = f"http://127.0.0.1:{port}"
    log = tmp_path / "dev.log"

    process = _start(data_dir, port, log)
    try:
        health = _wait_ready(process, addr)
        assert health.status_code == 200
        assert (health.json()["initialized"], health.json()["sealed"]) == (True, False)
        init_file = data_dir / "dev-init.json"
        assert stat.S_IMODE(init_file.stat().st_mode) == 0o600
        saved = json.loads(init_file.read_text())
        token = saved["root_token"]
        assert len(saved["shares"]) == 3
        with httpx.Client(base_url=addr, headers={"Authorization": f"Bearer {token}"}) as http:
            create_key(http, "dev/key", "aes-256-gcm")
            text = ok(http.post("/v1/keys/dev/key/encrypt",
                                json={"plaintext": b64(b"dev data")}))["ciphertext"]
    finally:
        _stop(process)
    output = log.read_text()
    assert "DEVELOPMENT MODE" in output
    assert "NOT FOR REAL KEYS" in output
    assert str(init_file) in output

    process = _start(data_dir, port, log)
    try:
        health = _wait_ready(process, addr)
        assert health.status_code == 200
        assert health.json()["sealed"] is False
        assert json.loads(init_file.read_text())["root_token"] == token
        with httpx.Client(base_url=addr, headers={"Authorization": f"Bearer {token}"}) as http:
            opened = ok(http.post("/v1/decrypt", json={"ciphertext": text}))
            assert unb64(opened["plaintext"]) == b"dev data"
            assert ok(http.get("/v1/auth/tokens/self"))["accessor"]
    finally:
        _stop(process)
    # the warning box with the secrets is printed once, when the dev store is created
    assert log.read_text().count("NOT FOR REAL KEYS") == 1
