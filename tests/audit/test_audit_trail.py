"""The tamper-evident audit trail through a real server, the CLI and the SQLite file."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kq_support import ServerProcess, configured_server, free_port

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
    process.start()
    process.init()
    process.unseal()
    yield process
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


def test_live_log_verifies_and_names_the_first_record_edited_in_the_sqlite_file(
        server: ServerProcess) -> None:
    use_keys(server)
    with server.client() as http:
        report = http.post("/v1/audit/verify", json={}).json()
        assert report["ok"] is True and report["records"] >= 5
        with db(server) as conn:
            conn.execute("UPDATE audit_records SET outcome = 'ok' WHERE outcome = 'error'")
            bad = conn.execute("SELECT min(id) FROM audit_records WHERE operation = 'decrypt' "
                               "AND error_code IS NOT NULL").fetchone()[0]
        report = http.post("/v1/audit/verify", json={}).json()
        assert report["ok"] is False and report["first_bad"]["id"] == bad
        bad_body = http.post("/v1/audit/verify", json={"checkpoints": [{"seq": "x"}]})
        assert bad_body.status_code == 400
        assert bad_body.json()["error"]["code"] == "invalid_request"


def test_context_is_stored_only_as_hmacs_and_found_by_hash(server: ServerProcess) -> None:
    use_keys(server)
    with server.client() as http:
        digest = http.post("/v1/audit/hash", json={"value": "acme-corp"}).json()["hash"]
        found = http.get("/v1/audit", params={"context": digest}).json()["records"]
        assert {r["operation"] for r in found} == {"encrypt", "decrypt"}
        assert all(digest in r["context"].values() for r in found)
        assert http.post("/v1/audit/hash", json={"value": 5}).status_code == 400
        assert http.get("/v1/audit", params={"context": "acme"}).status_code == 400
    server.stop()  # everything on disk now: no clear context anywhere in the store
    for path in server.data_dir.iterdir():
        if path.is_file():
            assert b"acme-corp" not in path.read_bytes(), path.name


def test_sealing_signs_a_checkpoint_and_an_export_verifies_offline_with_no_server(
        server: ServerProcess, tmp_path: Path) -> None:
    use_keys(server)
    with server.client() as http:
        assert http.post("/v1/sys/seal").is_success
    with db(server) as conn:
        assert conn.execute("SELECT count(*) FROM audit_checkpoints").fetchone()[0] == 1
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


def test_checkpoints_are_signed_at_the_configured_interval(tmp_path: Path) -> None:
    server = configured_server(tmp_path, {"audit_checkpoint_interval": 60})
    server.start()
    try:
        server.init()
        server.unseal()
        use_keys(server)
        assert server.advance_clock(61)["checkpoint"] is not None
        assert server.advance_clock(61)["checkpoint"] is not None  # clock call grew it
        with server.client() as http:
            report = http.post("/v1/audit/verify", json={}).json()
        assert report["ok"] and report["checkpoints"] == 2
    finally:
        server.stop()


def test_a_required_sink_that_cannot_write_stops_init_before_anything_is_stored(
        tmp_path: Path) -> None:
    server = configured_server(tmp_path, {"audit_sinks": [
        {"name": "full-disk", "type": "file", "path": "/dev/full", "policy": "required"}]})
    server.start()
    try:
        answer = httpx.post(f"{server.addr}/v1/sys/init", json={"shares": 3, "threshold": 2},
                            timeout=30)
        assert answer.status_code == 503
        assert answer.json()["error"]["code"] == "audit_unavailable"
        assert "shares" not in answer.text
        status = httpx.get(f"{server.addr}/v1/sys/seal-status").json()
        assert status["initialized"] is False  # no shares made that nobody saw
        health = httpx.get(f"{server.addr}/v1/sys/health").json()
        assert health["audit"]["sinks"][0]["failures"] >= 1
    finally:
        server.stop()


def test_a_hung_best_effort_sink_is_counted_while_the_service_keeps_answering(
        tmp_path: Path) -> None:
    fifo, copy = tmp_path / "nobody-reads.fifo", tmp_path / "copy.jsonl"
    os.mkfifo(fifo)
    server = configured_server(tmp_path, {"audit_sinks": [
        {"name": "hung", "type": "file", "path": str(fifo), "policy": "best-effort",
         "timeout": 0.2},
        {"name": "copy", "type": "file", "path": str(copy), "policy": "required"}]})
    server.start()
    try:
        server.init()
        server.unseal()
        time.sleep(0.3)
        started = time.monotonic()
        use_keys(server)
        assert time.monotonic() - started < 10
        health = httpx.get(f"{server.addr}/v1/sys/health").json()["audit"]
        hung = next(s for s in health["sinks"] if s["name"] == "hung")
        assert health["degraded"] is True and hung["healthy"] is False
        assert hung["failures"] >= 1 and hung["last_error"] == "timeout"
        assert b'"operation":"encrypt"' in copy.read_bytes()
    finally:
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # let the stuck thread go
        server.stop()
        os.close(reader)


def test_a_refused_decrypt_is_recorded_against_the_version_it_hit(
        server: ServerProcess) -> None:
    use_keys(server)
    with server.client() as http:
        sealed = http.post("/v1/keys/app/k/encrypt", json={"plaintext": b64(b"x")}).json()
        assert http.post("/v1/keys/app/k/rotate").is_success
        refused = http.post("/v1/keys/app/k/decrypt", json={
            "ciphertext": sealed["ciphertext"], "context": {"wrong": "context"}})
        assert refused.status_code == 400
        records = http.get("/v1/audit", params={"operation": "decrypt",
                                                "outcome": "error"}).json()["records"]
    assert (records[0]["key"], records[0]["key_version"]) == ("app/k", 1)


def test_a_batch_is_audited_one_record_per_outcome_and_context_with_item_counts(
        server: ServerProcess) -> None:
    use_keys(server)
    item = {"plaintext": b64(b"x")}
    batch = [{**item, "context": {"t": "a"}}] * 3 + [{**item, "context": {"t": "b"}}] * 2 \
        + [{"plaintext": "not base64!"}]
    with server.client() as http:
        answer = http.post("/v1/keys/app/k/encrypt", json={"batch": batch}).json()
        assert [("error" in r) for r in answer["results"]] == [False] * 5 + [True]
        tag_a = http.post("/v1/audit/hash", json={"value": "a"}).json()["hash"]
        records = http.get("/v1/audit", params={"operation": "encrypt", "limit": 3}).json()
    counts = sorted((r["outcome"], r["detail"]["items"], tag_a in (r.get("context") or {})
                     .values()) for r in records["records"])
    assert counts == [("error", "1", False), ("ok", "2", False), ("ok", "3", True)]
    assert {r["detail"]["batch_size"] for r in records["records"]} == {"6"}


def test_a_batch_error_record_never_borrows_the_version_of_a_later_item(
        server: ServerProcess) -> None:
    use_keys(server)
    with server.client() as http:
        sealed = http.post("/v1/keys/app/k/encrypt", json={"plaintext": b64(b"x")}).json()
        answer = http.post("/v1/keys/app/k/decrypt", json={"batch": [
            {"ciphertext": 5}, {"ciphertext": sealed["ciphertext"]}]}).json()
        assert "error" in answer["results"][0] and "plaintext" in answer["results"][1]
        records = http.get("/v1/audit", params={"operation": "decrypt", "limit": 2}).json()
    versions = {r["outcome"]: r["key_version"] for r in records["records"]}
    assert versions == {"error": None, "ok": 1}
