"""The compatibility specs (rsa-2048, ecdsa-p521, hmac-sha224) live by the same rules as
every spec: batches, disable/enable, rotation with old versions still verifying, and
revocation as compromised stopping new signatures and tags."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from http_helpers import assert_error, b64, create_key, ok, unique
from inprocess_server import InProcessServer

OPS = {"rsa-2048": ("sign", "verify", "signature"),
       "ecdsa-p521": ("sign", "verify", "signature"),
       "hmac-sha224": ("mac", "verify-mac", "mac")}


@pytest.fixture(scope="module")
def http(shared_inprocess: InProcessServer) -> Iterator[httpx.Client]:
    with shared_inprocess.client() as client:
        yield client


def _protect(http: httpx.Client, name: str, spec: str, message: bytes) -> httpx.Response:
    return http.post(f"/v1/keys/{name}/{OPS[spec][0]}", json={"message": b64(message)})


def _check(http: httpx.Client, name: str, spec: str, message: bytes, proof: str,
           **extra: Any) -> httpx.Response:
    _, check, field = OPS[spec]
    return http.post(f"/v1/keys/{name}/{check}",
                     json={"message": b64(message), field: proof, **extra})


@pytest.mark.parametrize("spec", list(OPS))
def test_batch_disable_rotate_and_revoke(http: httpx.Client, spec: str) -> None:
    name = unique(f"compat/{spec}")
    assert create_key(http, name, spec)["spec"] == spec
    verb, check, field = OPS[spec]
    results = ok(http.post(f"/v1/keys/{name}/{verb}", json={"batch": [
        {"message": b64(b"one")}, {"message": "not base64!"}, {"message": b64(b"two")}]}))
    results = results["results"]
    assert results[1]["error"]["code"] == "invalid_request"
    checked = ok(http.post(f"/v1/keys/{name}/{check}", json={"batch": [
        {"message": b64(b"one"), field: results[0][field]},
        {"message": b64(b"one"), field: results[2][field]}]}))["results"]
    assert [item["valid"] for item in checked] == [True, False]

    old = results[0][field]
    ok(http.post(f"/v1/keys/{name}/disable"))
    assert_error(_protect(http, name, spec, b"one"), 409, "key_state")
    assert_error(_check(http, name, spec, b"one", old), 409, "key_state")
    ok(http.post(f"/v1/keys/{name}/enable"))

    ok(http.post(f"/v1/keys/{name}/rotate"))
    assert ok(_check(http, name, spec, b"one", old, key_version=1))["valid"] is True
    fresh = ok(_protect(http, name, spec, b"one"))
    assert fresh["key_version"] == 2

    ok(http.post(f"/v1/keys/{name}/revoke", json={"reason": "compromised"}))
    assert_error(_protect(http, name, spec, b"one"), 409, "key_state")
