"""Every answer carries a request id; tokens can only name policies that exist."""

from __future__ import annotations

import pytest

from kq_support import ServerProcess


@pytest.mark.server
def test_unknown_path_still_answers_with_a_request_id(shared_server: ServerProcess) -> None:
    with shared_server.client() as http:
        answer = http.get("/v1/no/such/path")
    assert answer.status_code == 404
    body = answer.json()["error"]
    assert body["code"] == "not_found"
    assert body["request_id"] == answer.headers["x-request-id"]


@pytest.mark.server
def test_token_naming_a_missing_policy_is_refused(shared_server: ServerProcess) -> None:
    with shared_server.client() as http:
        answer = http.post("/v1/auth/tokens", json={"policies": ["nobody-wrote-this"]})
    assert answer.status_code == 400
    assert "nobody-wrote-this" in answer.json()["error"]["message"]
