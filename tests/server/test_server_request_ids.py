"""A client cannot put another address into the audit log through X-Forwarded-For: the
server process's HTTP layer believes it from no one by default.

(Request ids and audited refusals, in process: tests/api/test_request_ids.py.)"""

from __future__ import annotations

import pytest

from kq_support import ServerProcess


@pytest.mark.server
def test_a_client_cannot_spoof_its_address_in_the_audit_log(shared_server: ServerProcess) -> None:
    with shared_server.client() as http:
        answer = http.post("/v1/random", json={"bytes": 8},
                           headers={"X-Forwarded-For": "203.0.113.9"})
        assert answer.status_code == 200
        records = http.get("/v1/audit", params={"operation": "random", "limit": 20}).json()
    mine = [r for r in records["records"] if r["request_id"] == answer.headers["x-request-id"]]
    assert mine and mine[0]["client"] == "127.0.0.1"
