"""Access keys: AWS credentials that are identities like tokens (policies, accessor, audit,
revocation), with their secret stored only under the barrier."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from tests.inprocess_server import InProcessServer

from keyquorum.auth.access_keys import is_access_key_id


@pytest.fixture(scope="module")
def server(shared_inprocess: InProcessServer) -> InProcessServer:
    with shared_inprocess.client() as http:
        answer = http.put("/v1/policies/kms-user", json={"rules": [
            {"keys": "**", "operations": ["encrypt", "decrypt", "read", "list"]}]})
        assert answer.status_code == 200, answer.text
    return shared_inprocess


def _create(server: InProcessServer, **body: Any) -> dict[str, Any]:
    with server.client() as http:
        answer = http.post("/v1/auth/access-keys", json={"policies": ["kms-user"], **body})
    assert answer.status_code == 200, answer.text
    made: dict[str, Any] = answer.json()
    return made


def test_create_answers_an_aws_shaped_pair_once_and_lists_without_the_secret(
        server: InProcessServer) -> None:
    made = _create(server, name="ci", ttl="1h")
    assert is_access_key_id(made["access_key_id"])
    assert len(made["secret_access_key"]) == 40
    assert made["accessor"].startswith("acc_")
    assert made["policies"] == ["kms-user"]
    assert made["expires_at"] is not None
    with server.client() as http:
        listed = http.get("/v1/auth/access-keys").json()["access_keys"]
    mine = [k for k in listed if k["accessor"] == made["accessor"]]
    assert mine and "secret_access_key" not in mine[0]
    assert made["secret_access_key"] not in str(listed)


def test_the_secret_is_stored_only_under_the_barrier(server: InProcessServer) -> None:
    made = _create(server)
    with sqlite3.connect(server.data_dir / "keyquorum.db") as db:
        rows = db.execute("SELECT secret FROM access_keys WHERE accessor = ?",
                          (made["accessor"],)).fetchall()
        dump = "\n".join(db.iterdump())
    assert len(rows) == 1
    assert made["secret_access_key"].encode() not in rows[0][0]
    assert made["secret_access_key"] not in dump
    with server.client() as http:
        audit = http.get("/v1/audit", params={"limit": "1000"}).text
    assert made["secret_access_key"] not in audit
    assert made["accessor"] in audit


def test_a_caller_hands_out_only_policies_it_holds(server: InProcessServer) -> None:
    with server.client() as http:
        weak = http.post("/v1/auth/tokens", json={"policies": ["kms-user"]}).json()["token"]
    with server.client(weak) as http:
        answer = http.post("/v1/auth/access-keys", json={"policies": ["root"]})
    assert answer.status_code == 403


def test_revoke_removes_it_from_the_list(server: InProcessServer) -> None:
    made = _create(server)
    with server.client() as http:
        answer = http.delete(f"/v1/auth/access-keys/{made['accessor']}")
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"accessor": made["accessor"], "revoked": True}
        listed = http.get("/v1/auth/access-keys").json()["access_keys"]
        assert made["accessor"] not in {k["accessor"] for k in listed}
        again = http.delete(f"/v1/auth/access-keys/{made['accessor']}")
        assert again.status_code == 404
