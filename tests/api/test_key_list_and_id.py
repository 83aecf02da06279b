"""Lists that do not look empty when they are not, and keys reached by id as well as name.

A token with no ``list`` anywhere gets 403 ``forbidden`` saying so (never an empty
list that reads as an empty store); a token that may list some keys gets those,
and an empty answer then means there are none it may list. ``GET /v1/keys/{id}``
shows a key by id, with the permission checked against its name.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from http_helpers import assert_error, create_key, ok, unique
from inprocess_server import InProcessServer

pytestmark = pytest.mark.postgresql


@pytest.fixture(scope="module")
def root(shared_inprocess: InProcessServer) -> Iterator[httpx.Client]:
    with shared_inprocess.client() as client:
        yield client


def _token(root: httpx.Client, rules: list[dict], name: str) -> str:
    policy = unique("lst-policy").replace("/", "-")
    ok(root.put(f"/v1/policies/{policy}", json={"rules": rules}))
    return str(ok(root.post("/v1/auth/tokens", json={"policies": [policy], "name": name}))
               ["token"])


def test_a_token_that_may_use_keys_but_not_list_them_is_told_so(
        root: httpx.Client, shared_inprocess: InProcessServer) -> None:
    name = unique("lst/used")
    create_key(root, name, "aes-256-gcm")
    user = _token(root, [{"keys": "lst/**", "operations": ["encrypt", "read"]}], "user")
    with shared_inprocess.client(user) as http:
        error = assert_error(http.get("/v1/keys", params={"prefix": "lst/"}), 403, "forbidden")
        assert "may not list keys" in error["message"] and "by name or id" in error["message"]
        assert ok(http.get(f"/v1/keys/{name}"))["name"] == name  # what it may use, it can see
    audit = ok(root.get("/v1/audit", params={"operation": "list", "outcome": "denied"}))
    assert audit["records"], "the refusal is audited like any other"


def test_a_token_that_may_list_some_keys_gets_exactly_those(
        root: httpx.Client, shared_inprocess: InProcessServer) -> None:
    mine, other = unique("lst/team-a/k"), unique("lst/team-b/k")
    create_key(root, mine, "aes-256-gcm")
    create_key(root, other, "aes-256-gcm")
    lister = _token(root, [{"keys": "lst/team-a/**", "operations": ["list"]}], "lister")
    with shared_inprocess.client(lister) as http:
        names = [k["name"] for k in ok(http.get("/v1/keys", params={"prefix": "lst/"}))["keys"]]
        assert mine in names and other not in names
        assert ok(http.get("/v1/keys", params={"prefix": "zzz/"}))["keys"] == []  # none there


def test_a_key_is_shown_by_id_with_the_permission_of_its_name(
        root: httpx.Client, shared_inprocess: InProcessServer) -> None:
    allowed, hidden = unique("lst/byid/ok"), unique("lst/hidden/k")
    allowed_id = create_key(root, allowed, "aes-256-gcm")["id"]
    hidden_id = create_key(root, hidden, "aes-256-gcm")["id"]
    shown = ok(root.get(f"/v1/keys/{allowed_id}"))
    assert (shown["name"], shown["id"]) == (allowed, allowed_id)
    reader = _token(root, [{"keys": "lst/byid/**", "operations": ["read"]}], "reader")
    with shared_inprocess.client(reader) as http:
        assert ok(http.get(f"/v1/keys/{allowed_id}"))["name"] == allowed
        assert_error(http.get(f"/v1/keys/{hidden_id}"), 403, "forbidden")
    assert_error(root.get("/v1/keys/00000000-0000-4000-8000-000000000000"), 404, "not_found")
    # A key named exactly like another key's id is found by its name first.
    create_key(root, allowed_id, "aes-256-gcm")
    assert ok(root.get(f"/v1/keys/{allowed_id}"))["name"] == allowed_id
