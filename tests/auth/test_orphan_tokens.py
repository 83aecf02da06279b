"""Orphan tokens: init's root token can be revoked without locking the operators out,
and review F13 stays closed (only a root holder mints a token that outlives it).

Real app, real store (SQLite and PostgreSQL), in process.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from http_helpers import assert_error, ok
from inprocess_server import InProcessServer

pytestmark = pytest.mark.postgresql


def _mint(http: httpx.Client, name: str, *, policy: str = "operator",
          orphan: bool | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"policies": [policy], "name": name}
    if orphan is not None:
        body["orphan"] = orphan
    return ok(http.post("/v1/auth/tokens", json=body))  # type: ignore[no-any-return]


def _works(server: InProcessServer, token: str) -> bool:
    with server.client(token) as http:
        answer = http.get("/v1/auth/tokens/self")
    assert answer.status_code in (200, 401), answer.text
    return answer.status_code == 200


def test_revoking_the_root_token_leaves_the_orphans_it_minted_and_their_children(
        inprocess_server: InProcessServer) -> None:
    server = inprocess_server
    with server.client() as root:
        root_accessor = ok(root.get("/v1/auth/tokens/self"))["accessor"]
        admin = _mint(root, "ops-oncall", orphan=True)
        plain = _mint(root, "made-before-the-advice")
        records = ok(root.get("/v1/audit", params={"operation": "sys:tokens",
                                                   "limit": 50}))["records"]
    with server.client(admin["token"]) as http:
        admins_child = _mint(http, "ops-helper")
    assert admin["orphan"] is True and plain["orphan"] is False
    assert admins_child["orphan"] is False
    made = {r["detail"]["created_accessor"]: r["detail"] for r in records
            if "created_accessor" in (r.get("detail") or {})}
    assert made[admin["accessor"]].get("orphan") == "true"
    assert "orphan" not in made[plain["accessor"]]

    with server.client() as root:
        answer = ok(root.delete(f"/v1/auth/tokens/{root_accessor}"))
    assert answer["revoked"] is True
    assert answer["also_revoked"] == [plain["accessor"]]
    assert answer["also_revoked_details"] == [
        {"accessor": plain["accessor"], "kind": "token", "name": "made-before-the-advice",
         "policies": ["operator"]}]
    assert not _works(server, server.root_token)
    assert not _works(server, plain["token"])
    assert _works(server, admin["token"]) and _works(server, admins_child["token"])

    # The orphan's own lineage still dies with it (F13 holds below the orphan).
    with server.client(admin["token"]) as http:
        ok(http.delete(f"/v1/auth/tokens/{admin['accessor']}"))
    assert not _works(server, admins_child["token"])


def test_a_sys_tokens_holder_that_is_not_root_cannot_mint_an_orphan(
        inprocess_server: InProcessServer) -> None:
    server = inprocess_server
    with server.client() as root:
        operator = _mint(root, "operator")
    with server.client(operator["token"]) as http:
        assert_error(http.post("/v1/auth/tokens", json={"policies": ["operator"],
                                                        "orphan": True}),
                     403, "forbidden")
        child = _mint(http, "child", orphan=False)  # an explicit false is a plain child
    with server.client() as root:
        ok(root.delete(f"/v1/auth/tokens/{operator['accessor']}"))
        refused = ok(root.get("/v1/audit", params={"operation": "sys:tokens", "outcome":
                                                   "denied", "identity": operator["accessor"],
                                                   "limit": 50}))["records"]
    assert not _works(server, child["token"])
    assert [r["error_code"] for r in refused] == ["forbidden"]


def test_a_token_lookup_shows_what_its_revocation_would_take_and_revokes_nothing(
        inprocess_server: InProcessServer) -> None:
    server = inprocess_server
    with server.client() as root:
        parent = _mint(root, "parent")
        orphan = _mint(root, "orphan", orphan=True)
    with server.client(parent["token"]) as http:
        child = _mint(http, "child")
        key = ok(http.post("/v1/auth/access-keys", json={"policies": ["operator"],
                                                        "name": "ci"}))
    with server.client(child["token"]) as http:
        grandchild = _mint(http, "grandchild")

    with server.client() as root:
        seen = ok(root.get(f"/v1/auth/tokens/{parent['accessor']}"))
        again = ok(root.get(f"/v1/auth/tokens/{parent['accessor']}"))
        root_seen = ok(root.get("/v1/auth/tokens/self"))
    assert seen == again  # nothing was revoked by looking
    assert (seen["accessor"], seen["name"], seen["orphan"]) == (parent["accessor"], "parent",
                                                                False)
    assert seen["also_revoked"] == [child["accessor"], grandchild["accessor"],
                                    key["accessor"]]
    assert [d["kind"] for d in seen["also_revoked_details"]] == ["token", "token",
                                                                 "access_key"]
    assert root_seen["orphan"] is True  # init's root token has no parent token
    assert _works(server, grandchild["token"])

    with server.client(child["token"]) as http:  # its own lineage: no sys:tokens needed
        own = ok(http.get(f"/v1/auth/tokens/{child['accessor']}"))
        assert own["also_revoked"] == [grandchild["accessor"]]
    with server.client(grandchild["token"]) as http:  # operator holds sys:tokens
        ok(http.get(f"/v1/auth/tokens/{orphan['accessor']}"))
    with server.client() as root:
        ok(root.put("/v1/policies/reader", json={"rules": [
            {"keys": "*", "operations": ["read"]}]}))
        reader = _mint(root, "reader", policy="reader")
        done = ok(root.delete(f"/v1/auth/tokens/{parent['accessor']}"))
        assert_error(root.get(f"/v1/auth/tokens/{parent['accessor']}"), 404, "not_found")
        assert_error(root.get("/v1/auth/tokens/acc_0000000000000000"), 404, "not_found")
    assert done["also_revoked"] == seen["also_revoked"]
    with server.client(reader["token"]) as http:
        assert_error(http.get(f"/v1/auth/tokens/{orphan['accessor']}"), 403, "forbidden")
