"""Audit sinks added through the API and removed only with approval (the real app, in process).

(That they are kept across a restart: tests/e2e/test_audit_sinks_api.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import MakeInProcess
from dual_control_support import cast, needs_approval
from http_helpers import assert_error, ok
from inprocess_server import InProcessServer


@pytest.fixture
def server(make_inprocess: MakeInProcess, tmp_path: Path) -> InProcessServer:
    made = make_inprocess(config={"audit_sinks": [
        {"name": "fixed", "type": "file", "path": str(tmp_path / "fixed.jsonl")}],
        "audit_sink_dirs": [str(tmp_path)]})
    made.init()
    made.unseal()
    return made


def test_removing_a_sink_needs_approval_under_dual_control(
        server: InProcessServer, tmp_path: Path) -> None:
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
