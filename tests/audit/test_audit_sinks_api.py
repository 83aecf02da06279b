"""Audit sinks added through the API, kept across restarts, and removed only with approval."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.dual_control_support import cast, needs_approval
from e2e.e2e_helpers import assert_error, ok
from kq_support import ServerProcess, configured_server

pytestmark = pytest.mark.server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = configured_server(tmp_path, {"audit_sinks": [
        {"name": "fixed", "type": "file", "path": str(tmp_path / "fixed.jsonl")}]})
    process.start()
    process.init()
    process.unseal()
    yield process
    process.stop()


def test_a_sink_added_at_run_time_gets_records_and_survives_a_restart(
        server: ServerProcess, tmp_path: Path) -> None:
    copy = tmp_path / "copy.jsonl"
    with server.client() as http:
        ok(http.put("/v1/sys/audit/sinks/copy", json={"type": "file", "path": str(copy),
                                                       "policy": "best-effort"}))
        assert_error(http.put("/v1/sys/audit/sinks/copy", json={"type": "file",
                                                                "path": str(copy)}),
                     409, "conflict")
        assert_error(http.put("/v1/sys/audit/sinks/bad", json={"type": "kafka"}),
                     400, "invalid_request")
        ok(http.post("/v1/keys", json={"name": "s/k", "spec": "aes-256-gcm"}))
    server.restart()
    server.unseal()
    with server.client() as http:
        ok(http.post("/v1/keys/s/k/encrypt", json={"plaintext": base64.b64encode(b"x").decode()}))
        sinks = {s["name"]: s for s in ok(http.get("/v1/sys/audit/sinks"))["sinks"]}
    assert sinks["fixed"]["source"] == "config" and sinks["copy"]["source"] == "api"
    written = copy.read_text()
    assert '"operation":"create"' in written and '"operation":"encrypt"' in written


def test_removing_a_sink_needs_approval_under_dual_control(
        server: ServerProcess, tmp_path: Path) -> None:
    people = cast(server, approvals=2)
    try:
        root = people.http()
        ok(root.put("/v1/sys/audit/sinks/siem", json={"type": "file",
                                                      "path": str(tmp_path / "siem.jsonl")}))
        assert_error(root.delete("/v1/sys/audit/sinks/fixed"), 409, "conflict")
        assert_error(root.delete("/v1/sys/audit/sinks/nope"), 404, "not_found")
        approval_id = needs_approval(root.delete("/v1/sys/audit/sinks/siem"))
        names = [s["name"] for s in ok(root.get("/v1/sys/audit/sinks"))["sinks"]]
        assert "siem" in names  # still there while waiting
        people.approve(approval_id)
        ok(root.delete(f"/v1/sys/audit/sinks/siem?approval_id={approval_id}"))
        names = [s["name"] for s in ok(root.get("/v1/sys/audit/sinks"))["sinks"]]
        assert names == ["fixed"]
        assert_error(root.delete(f"/v1/sys/audit/sinks/siem?approval_id={approval_id}"),
                     404, "not_found")
        removed = ok(root.get("/v1/audit", params={"operation": "audit:sink-remove"}))
        outcomes = [r["outcome"] for r in removed["records"]]
        assert outcomes.count("ok") == 1 and "denied" in outcomes
    finally:
        people.close()
