"""Every answer carries a request id; tokens can only name policies that exist; requests
refused before any operation are audited (the real app, in process).

(X-Forwarded-For spoofing against the server's HTTP layer:
tests/server/test_server_request_ids.py.)"""

from __future__ import annotations

from inprocess_server import InProcessServer


def test_unknown_path_still_answers_with_a_request_id(shared_inprocess: InProcessServer) -> None:
    with shared_inprocess.client() as http:
        answer = http.get("/v1/no/such/path")
    assert answer.status_code == 404
    body = answer.json()["error"]
    assert body["code"] == "not_found"
    assert body["request_id"] == answer.headers["x-request-id"]


def test_token_naming_a_missing_policy_is_refused(shared_inprocess: InProcessServer) -> None:
    with shared_inprocess.client() as http:
        answer = http.post("/v1/auth/tokens", json={"policies": ["nobody-wrote-this"]})
    assert answer.status_code == 400
    assert "nobody-wrote-this" in answer.json()["error"]["message"]


JSON = {"Content-Type": "application/json"}


def test_requests_refused_before_any_operation_are_audited(
        shared_inprocess: InProcessServer) -> None:
    with shared_inprocess.client() as http:
        me = http.get("/v1/auth/tokens/self").json()["accessor"]
        refused = [
            http.post("/v1/keys", content=b"{not json", headers=JSON),
            http.post("/v1/keys/some/key/encrypt", content=b"[1, 2", headers=JSON),
            http.get("/v1/nowhere/at/all"),
            http.post("/v1/keys", content=b"{}", headers={"Content-Type": "text/plain"}),
        ]
        ids = {answer.headers["x-request-id"] for answer in refused}
        assert [a.status_code for a in refused] == [400, 400, 404, 415]
        records = http.get("/v1/audit", params={"limit": 50}).json()["records"]
    found = {r["request_id"]: r for r in records if r["request_id"] in ids}
    assert set(found) == ids
    for record in found.values():
        assert record["outcome"] == "error"
        assert record["identity"] == me
        assert record["error_code"] in ("invalid_request", "not_found")
