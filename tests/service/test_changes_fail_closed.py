"""Every kind of state change is one unit of work: no audit record, no change.

Audit storage is broken under the running app (a trigger that makes every insert
into ``audit_records`` fail, added to its SQLite file from outside, the way a
full or failing audit table would behave). Each kind of change is then asked
for; each must answer 503 ``audit_unavailable``, and once audit storage works
again, none of them may have landed.
"""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

import httpx
import pytest

from audit_breakage import audit_storage_broken
from conftest import MakeInProcess
from inprocess_server import InProcessServer


def _stored_tokens_named(data_dir: Path, name: str) -> int:
    with sqlite3.connect(data_dir / "keyquorum.db") as store:
        return int(store.execute("SELECT count(*) FROM tokens WHERE name = ?",
                                 (name,)).fetchone()[0])


def _ok(answer: httpx.Response) -> dict:
    assert answer.status_code == 200, answer.text
    return answer.json()


def _refused(answer: httpx.Response) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "audit_unavailable"


@pytest.fixture
def inprocess_server(make_inprocess: MakeInProcess, tmp_path: Path) -> InProcessServer:
    """Initialized and unsealed; API sinks may write beside its data directory."""
    server = make_inprocess(config={"audit_sink_dirs": [str(tmp_path)]})
    server.init()
    server.unseal()
    return server


def test_no_state_change_lands_when_its_audit_record_cannot_be_written(
        inprocess_server: InProcessServer) -> None:
    with inprocess_server.client() as root:
        _ok(root.post("/v1/keys", json={"name": "uow/live", "spec": "aes-256-gcm"}))
        _ok(root.put("/v1/policies/uow-kept", json={"rules": [
            {"keys": "uow/*", "operations": ["encrypt"]}]}))
        victim = _ok(root.post("/v1/auth/tokens", json={"policies": ["uow-kept"]}))
        _ok(root.put("/v1/sys/audit/sinks/uow-sink", json={
            "type": "file", "path": str(inprocess_server.data_dir.parent / "sink.jsonl")}))
        before = _ok(root.get("/v1/keys/uow/live"))

        with audit_storage_broken(inprocess_server.data_dir):
            _refused(root.post("/v1/keys", json={"name": "uow/new", "spec": "aes-256-gcm"}))
            _refused(root.post("/v1/keys/uow/live/rotate"))
            _refused(root.post("/v1/keys/uow/live/disable"))
            _refused(root.patch("/v1/keys/uow/live", json={"description": "changed"}))
            _refused(root.post("/v1/keys/uow/live/revoke", json={"reason": "retired"}))
            _refused(root.put("/v1/policies/uow-new", json={"rules": [
                {"keys": "**", "operations": ["*"]}]}))
            _refused(root.delete("/v1/policies/uow-kept"))
            _refused(root.post("/v1/auth/tokens", json={"policies": ["uow-kept"],
                                                        "name": "uow-never"}))
            _refused(root.delete(f"/v1/auth/tokens/{victim['accessor']}"))
            _refused(root.put("/v1/sys/audit/sinks/uow-other", json={
                "type": "file", "path": str(inprocess_server.data_dir.parent / "other.jsonl")}))
            _refused(root.delete("/v1/sys/audit/sinks/uow-sink"))
            _refused(root.put("/v1/sys/dual-control", json={"approvals": 1}))

        # Audit works again: nothing of the above happened.
        after = _ok(root.get("/v1/keys/uow/live"))
        assert (after["primary_version"], after["state"], after["description"]) == (
            before["primary_version"], before["state"], before["description"])
        assert root.get("/v1/keys/uow/new").status_code == 404
        assert root.get("/v1/policies/uow-new").status_code == 404
        assert _ok(root.get("/v1/policies/uow-kept"))["name"] == "uow-kept"
        assert _stored_tokens_named(inprocess_server.data_dir, "uow-never") == 0
        sinks = {s["name"] for s in _ok(root.get("/v1/sys/audit/sinks"))["sinks"]}
        assert "uow-sink" in sinks and "uow-other" not in sinks
        assert _ok(root.get("/v1/sys/dual-control")).get("approvals", 0) in (0, None)

    # The token whose revocation was refused still works.
    with inprocess_server.client(victim["token"]) as http:
        answer = http.post("/v1/keys/uow/live/encrypt",
                           json={"plaintext": base64.b64encode(b"still here").decode()})
        assert answer.status_code == 200, answer.text

    with inprocess_server.client() as root:
        report = _ok(root.post("/v1/audit/verify", json={}))
        assert report["ok"] is True, report


def test_an_approval_is_not_decided_when_its_audit_record_cannot_be_written(
        inprocess_server: InProcessServer) -> None:
    with inprocess_server.client() as root:
        approver = _ok(root.post("/v1/auth/tokens", json={"policies": ["approver"]}))
        _ok(root.put("/v1/policies/uow-doomed", json={"rules": [
            {"keys": "uow/*", "operations": ["read"]}]}))
        _ok(root.put("/v1/sys/dual-control", json={"approvals": 1}))
        asked = root.delete("/v1/policies/uow-doomed")
        assert asked.json()["error"]["code"] == "approval_required", asked.text
        approval_id = asked.json()["error"]["approval_id"]

    with inprocess_server.client(approver["token"]) as http:
        with audit_storage_broken(inprocess_server.data_dir):
            _refused(http.post(f"/v1/approvals/{approval_id}/approve", json={}))
        assert _ok(http.get(f"/v1/approvals/{approval_id}"))["state"] == "pending"
        assert _ok(http.post(f"/v1/approvals/{approval_id}/approve",
                             json={}))["state"] == "approved"
