"""The tamper-evident audit trail through the CLI against a real server process.

(The same trail through the API and the SQLite file, in process:
tests/audit/test_audit_trail.py.)"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kq_support import ServerProcess, free_port

pytestmark = pytest.mark.server


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kq(*args: str, addr: str, token: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KEYQUORUM_ADDR": addr, "KEYQUORUM_TOKEN": token}
    return subprocess.run([sys.executable, "-m", "keyquorum", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def db(server: ServerProcess) -> sqlite3.Connection:
    return sqlite3.connect(server.data_dir / "keyquorum.db", timeout=15)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(data_dir=tmp_path / "data", port=free_port())
    try:  # stopped even when start, init or unseal fails
        process.start()
        process.init()
        process.unseal()
        yield process
    finally:
        process.stop()


def use_keys(server: ServerProcess) -> None:
    with server.client() as http:
        assert http.post("/v1/keys", json={"name": "app/k", "spec": "aes-256-gcm"}).is_success
        sealed = http.post("/v1/keys/app/k/encrypt", json={
            "plaintext": b64(b"card"), "context": {"tenant": "acme-corp"}}).json()
        assert http.post("/v1/decrypt", json={"ciphertext": sealed["ciphertext"],
                                              "context": {"tenant": "acme-corp"}}).is_success
        assert http.post("/v1/decrypt", json={"ciphertext": sealed["ciphertext"],
                                              "context": {"tenant": "evil"}}).status_code == 400


def test_sealing_signs_a_checkpoint_and_an_export_verifies_offline_with_no_server(
        server: ServerProcess, tmp_path: Path) -> None:
    use_keys(server)
    with db(server) as conn:  # the unseal signed what init and the first share wrote
        before = conn.execute("SELECT count(*) FROM audit_checkpoints").fetchone()[0]
    with server.client() as http:
        assert http.post("/v1/sys/seal").is_success
    with db(server) as conn:
        assert conn.execute("SELECT count(*) FROM audit_checkpoints").fetchone()[0] \
            == before + 1
    server.unseal()
    log, pem = tmp_path / "audit.jsonl", tmp_path / "audit.pem"
    done = kq("audit", "export", "--out", str(log), "--public-key-out", str(pem),
              addr=server.addr, token=server.root_token)
    assert done.returncode == 0, done.stderr
    assert pem.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    nowhere = f"http://127.0.0.1:{free_port()}"  # no server listens: offline for real
    good = kq("--json", "audit", "verify", "--file", str(log), "--public-key", str(pem),
              addr=nowhere)
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["last_checkpoint"] is not None
    lines = log.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if '"operation":"encrypt"' in line)
    lines[at] = lines[at].replace('"outcome":"ok"', '"outcome":"denied"')
    log.write_text("\n".join(lines) + "\n")
    broken = kq("--json", "audit", "verify", "--file", str(log), "--public-key", str(pem),
                addr=nowhere)
    assert broken.returncode == 1
    assert json.loads(broken.stdout)["first_bad"]["id"] == json.loads(lines[at])["id"]
    assert kq("audit", "verify", "--file", str(log), addr=nowhere).returncode == 2


def test_a_checkpoint_kept_outside_catches_a_tail_cut_in_the_database(
        server: ServerProcess, tmp_path: Path) -> None:
    use_keys(server)
    kept = tmp_path / "checkpoint.json"
    made = kq("--json", "audit", "checkpoint", addr=server.addr, token=server.root_token)
    assert made.returncode == 0, made.stderr
    kept.write_text(made.stdout)
    seq = json.loads(made.stdout)["seq"]
    server.stop()
    with db(server) as conn:  # cut the tail, its checkpoints and move the head back
        conn.execute("DELETE FROM audit_records WHERE id > ?", (seq - 2,))
        conn.execute("DELETE FROM audit_checkpoints")
        last = conn.execute("SELECT id, chain_hash FROM audit_records ORDER BY id DESC "
                            "LIMIT 1").fetchone()
        conn.execute("UPDATE audit_head SET seq = ?, chain_hash = ?", last)
    server.start()
    server.unseal()
    # The first record written now continues the shortened chain, so only the kept
    # checkpoint can tell: its record is not the one the log now has at that place.
    inside = kq("--json", "audit", "verify", addr=server.addr, token=server.root_token)
    assert inside.returncode == 0, inside.stdout
    outside = kq("--json", "audit", "verify", "--checkpoint", str(kept), addr=server.addr,
                 token=server.root_token)
    assert outside.returncode == 1
    assert json.loads(outside.stdout)["first_bad"]["id"] <= seq
