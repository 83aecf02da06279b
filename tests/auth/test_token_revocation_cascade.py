"""Review F13: revoking a token revokes every token (and access key) it minted, transitively.

The review's reproduction: a parent operator token minted a child; ``DELETE`` of the parent
left the child working for the rest of its TTL. Real app, real store, in process.
"""

from __future__ import annotations

import httpx
import pytest

from http_helpers import assert_error, ok
from inprocess_server import InProcessServer

pytestmark = pytest.mark.postgresql


def _mint(http: httpx.Client, name: str) -> dict[str, str]:
    made = ok(http.post("/v1/auth/tokens", json={"policies": ["operator"], "name": name}))
    return {"token": made["token"], "accessor": made["accessor"]}


def test_revoking_a_token_revokes_everything_it_minted_transitively(
        inprocess_server: InProcessServer) -> None:
    server = inprocess_server
    with server.client() as root:
        parent = _mint(root, "stolen")
        bystander = _mint(root, "bystander")
    with server.client(parent["token"]) as http:
        child = _mint(http, "child")
    with server.client(child["token"]) as http:
        grandchild = _mint(http, "grandchild")
        key = ok(http.post("/v1/auth/access-keys", json={"policies": ["operator"]}))
    with server.client(grandchild["token"]) as http:
        ok(http.get("/v1/auth/tokens/self"))

    with server.client() as root:
        answer = ok(root.delete(f"/v1/auth/tokens/{parent['accessor']}"))
        assert answer["revoked"] is True
        assert set(answer["also_revoked"]) == {child["accessor"], grandchild["accessor"],
                                               key["accessor"]}
        listed = ok(root.get("/v1/auth/access-keys"))["access_keys"]
        records = ok(root.get("/v1/audit", params={"operation": "sys:tokens",
                                                   "limit": 50}))["records"]
    for made in (parent, child, grandchild):
        with server.client(made["token"]) as http:
            assert_error(http.get("/v1/auth/tokens/self"), 401, "unauthenticated")
    assert key["accessor"] not in {k["accessor"] for k in listed}
    with server.client(bystander["token"]) as http:  # a sibling, not a child: untouched
        ok(http.get("/v1/auth/tokens/self"))
    revocation = [r for r in records if (r.get("detail") or {}).get("revoked_accessor")
                  == parent["accessor"]]
    assert len(revocation) == 1 and revocation[0]["detail"]["cascade"] == "3"
