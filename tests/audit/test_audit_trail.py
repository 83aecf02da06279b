"""The tamper-evident audit trail through the API and the SQLite file (the real app, in process).

(Exporting, checkpointing and verifying with the CLI: tests/e2e/test_audit_trail_e2e.py.)"""

from __future__ import annotations

import base64
import os
import sqlite3
import time
from pathlib import Path

import pytest

from conftest import MakeInProcess
from inprocess_server import InProcessServer


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def db(server: InProcessServer) -> sqlite3.Connection:
    return sqlite3.connect(server.data_dir / "keyquorum.db", timeout=15)


@pytest.fixture
def server(inprocess_server: InProcessServer) -> InProcessServer:
    return inprocess_server


def use_keys(server: InProcessServer) -> None:
    with server.client() as http:
        assert http.post("/v1/keys", json={"name": "app/k", "spec": "aes-256-gcm"}).is_success
        sealed = http.post("/v1/keys/app/k/encrypt", json={
            "plaintext": b64(b"card"), "context": {"tenant": "acme-corp"}}).json()
        assert http.post("/v1/decrypt", json={"ciphertext": sealed["ciphertext"],
                                              "context": {"tenant": "acme-corp"}}).is_success
        assert http.post("/v1/decrypt", json={"ciphertext": sealed["ciphertext"],
                                              "context": {"tenant": "evil"}}).status_code == 400


def test_live_log_verifies_and_names_the_first_record_edited_in_the_sqlite_file(
        server: InProcessServer) -> None:
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


def test_context_is_stored_only_as_hmacs_and_found_by_hash(server: InProcessServer) -> None:
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


def test_checkpoints_are_signed_at_the_configured_interval(
        make_inprocess: MakeInProcess) -> None:
    server = make_inprocess(config={"audit_checkpoint_interval": 60})
    server.init()
    server.unseal()
    use_keys(server)
    assert server.advance_clock(61)["checkpoint"] is not None
    assert server.advance_clock(61)["checkpoint"] is not None  # clock call grew it
    with server.client() as http:
        report = http.post("/v1/audit/verify", json={}).json()
    # One at unseal (init's record and the first share's were waiting), two by interval.
    assert report["ok"] and report["checkpoints"] == 3


def test_a_required_sink_that_cannot_write_stops_init_before_anything_is_stored(
        make_inprocess: MakeInProcess) -> None:
    server = make_inprocess(config={"audit_sinks": [
        {"name": "full-disk", "type": "file", "path": "/dev/full", "policy": "required"}]})
    with server.anonymous() as http:
        answer = http.post("/v1/sys/init", json={"shares": 3, "threshold": 2})
        assert answer.status_code == 503
        assert answer.json()["error"]["code"] == "audit_unavailable"
        assert "shares" not in answer.text
        status = http.get("/v1/sys/seal-status").json()
        assert status["initialized"] is False  # no shares made that nobody saw
        health = http.get("/v1/sys/health").json()
        assert health["audit"]["sinks"][0]["failures"] >= 1


def test_a_hung_best_effort_sink_is_counted_while_the_service_keeps_answering(
        make_inprocess: MakeInProcess, tmp_path: Path) -> None:
    fifo, copy = tmp_path / "nobody-reads.fifo", tmp_path / "copy.jsonl"
    os.mkfifo(fifo)
    server = make_inprocess(config={"audit_sinks": [
        {"name": "hung", "type": "file", "path": str(fifo), "policy": "best-effort",
         "timeout": 0.2},
        {"name": "copy", "type": "file", "path": str(copy), "policy": "required"}]})
    try:
        server.init()
        server.unseal()
        time.sleep(0.3)
        started = time.monotonic()
        use_keys(server)
        assert time.monotonic() - started < 10
        with server.anonymous() as http:
            health = http.get("/v1/sys/health").json()["audit"]
        hung = next(s for s in health["sinks"] if s["name"] == "hung")
        assert health["degraded"] is True and hung["healthy"] is False
        assert hung["failures"] >= 1 and hung["last_error"] == "timeout"
        assert b'"operation":"encrypt"' in copy.read_bytes()
    finally:
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # let the stuck thread go
        server.stop()
        os.close(reader)


def test_a_refused_decrypt_is_recorded_against_the_version_it_hit(
        server: InProcessServer) -> None:
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
        server: InProcessServer) -> None:
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
        server: InProcessServer) -> None:
    use_keys(server)
    with server.client() as http:
        sealed = http.post("/v1/keys/app/k/encrypt", json={"plaintext": b64(b"x")}).json()
        answer = http.post("/v1/keys/app/k/decrypt", json={"batch": [
            {"ciphertext": 5}, {"ciphertext": sealed["ciphertext"]}]}).json()
        assert "error" in answer["results"][0] and "plaintext" in answer["results"][1]
        records = http.get("/v1/audit", params={"operation": "decrypt", "limit": 2}).json()
    versions = {r["outcome"]: r["key_version"] for r in records["records"]}
    assert versions == {"error": None, "ok": 1}
