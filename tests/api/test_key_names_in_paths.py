"""A key name in a URL is validated before any policy sees it (security review F5).

The review froze a server for 22 s with one request: a policy glob with three
``**`` matched (by a backtracking regex) against a 4,500-character name taken
from the path unvalidated. Now every route validates the name first (at most 128
characters, segments of ``a-z 0-9 . _ -``, none empty, ``.`` or ``..``) and answers
400 ``invalid_request`` without evaluating a single policy rule. These tests
watch the authorizer itself: it is never called for a bad name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from keyquorum.service.core import Core

if TYPE_CHECKING:
    from conftest import MintToken

pytestmark = pytest.mark.anyio

ADVERSARIAL_GLOB = "**/db/**/db/**/k"
BAD_NAMES = {
    "adversarial, 4501 characters": "db/" * 1500 + "x",
    "129 characters": "z" * 129,
    "upper case": "A",
    "dot-dot segment": "app/%2E%2E/k",  # percent-encoded, so the client does not resolve it
    "dot segment": "app/%2E/k",
    "empty segment": "app//k",
    "empty last segment": "app/",
}
ROUTES: dict[str, Callable[[httpx.AsyncClient, str, dict[str, str]], Any]] = {
    "POST encrypt": lambda api, name, headers: api.post(
        f"/v1/keys/{name}/encrypt", json={"plaintext": "aGk="}, headers=headers),
    "POST decrypt": lambda api, name, headers: api.post(
        f"/v1/keys/{name}/decrypt", json={"ciphertext": "kq1:AAAA"}, headers=headers),
    "GET key": lambda api, name, headers: api.get(f"/v1/keys/{name}", headers=headers),
    "POST rotate": lambda api, name, headers: api.post(
        f"/v1/keys/{name}/rotate", json={}, headers=headers),
}


@pytest.fixture
def policy_calls(core: Core, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Every (operation, key) the authorizer is asked about from now on."""
    calls: list[tuple[str, Any]] = []
    original = core.authorizer.authorize

    def watched(identity: Any, operation: str, key: Any = None, **facts: Any) -> Any:
        calls.append((operation, key))
        return original(identity, operation, key, **facts)

    monkeypatch.setattr(core.authorizer, "authorize", watched)
    return calls


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("name", BAD_NAMES.values(), ids=BAD_NAMES.keys())
async def test_a_bad_key_name_in_the_path_is_refused_before_any_policy_is_evaluated(
        api: httpx.AsyncClient, mint_token: MintToken, policy_calls: list[tuple[str, Any]],
        route: str, name: str) -> None:
    token = await mint_token([{"keys": ADVERSARIAL_GLOB,
                               "operations": ["encrypt", "decrypt", "read", "rotate"]}])
    policy_calls.clear()  # minting the token asked about root's policies

    answer = await ROUTES[route](api, name, {"Authorization": f"Bearer {token}"})

    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_request"
    assert "key name" in answer.json()["error"]["message"]
    assert policy_calls == []


@pytest.mark.parametrize("route", [route for route in ROUTES if route != "POST decrypt"])
async def test_a_good_key_name_reaches_the_policy_that_the_bad_ones_never_reach(
        api: httpx.AsyncClient, mint_token: MintToken, policy_calls: list[tuple[str, Any]],
        route: str) -> None:
    """The control: the same token and a valid name are judged by the policy (403).
    (A key route's decrypt is authorized on the key its ciphertext names instead.)"""
    token = await mint_token([{"keys": ADVERSARIAL_GLOB,
                               "operations": ["encrypt", "decrypt", "read", "rotate"]}])
    policy_calls.clear()

    answer = await ROUTES[route](api, "db/db/x", {"Authorization": f"Bearer {token}"})

    assert answer.status_code == 403, answer.text
    assert policy_calls and policy_calls[0][1] == "db/db/x"
