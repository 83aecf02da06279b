"""An audit sink added through the API is kept across a server process's restart.

(The sink API itself, in process: tests/audit/test_audit_sinks_api.py.)"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from http_helpers import assert_error, ok
from kq_support import ServerProcess, configured_server

pytestmark = pytest.mark.server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = configured_server(tmp_path, {"audit_sinks": [
        {"name": "fixed", "type": "file", "path": str(tmp_path / "fixed.jsonl")}],
        "audit_sink_dirs": [str(tmp_path)]})
    try:  # stopped even when start, init or unseal fails
        process.start()
        process.init()
        process.unseal()
        yield process
    finally:
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
