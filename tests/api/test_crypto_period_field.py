"""The per-key crypto_period: set on create, changed or reset with PATCH, refused when bad."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from http_helpers import assert_error, create_key, ok, unique
from inprocess_server import InProcessServer

DAY = 86400


@pytest.fixture(scope="module")
def http(shared_inprocess: InProcessServer) -> Iterator[httpx.Client]:
    with shared_inprocess.client() as client:
        yield client


def test_crypto_period_is_stored_shown_changed_and_reset(http: httpx.Client) -> None:
    name = unique("cp/key")
    assert create_key(http, name, "aes-256-gcm", crypto_period="400d")["crypto_period"] \
        == 400 * DAY
    assert ok(http.get(f"/v1/keys/{name}"))["crypto_period"] == 400 * DAY
    assert ok(http.patch(f"/v1/keys/{name}", json={"crypto_period": 86400 * 30})
              )["crypto_period"] == 30 * DAY
    inventory = {k["name"]: k for k in ok(http.get("/v1/reports/inventory"))["keys"]}
    assert inventory[name]["crypto_period"]["seconds"] == 30 * DAY
    assert ok(http.patch(f"/v1/keys/{name}", json={"crypto_period": None})
              )["crypto_period"] is None  # back to the spec's NIST default
    inventory = {k["name"]: k for k in ok(http.get("/v1/reports/inventory"))["keys"]}
    assert inventory[name]["crypto_period"]["source"] == "default"
    assert create_key(http, unique("cp/none"), "ed25519")["crypto_period"] is None


@pytest.mark.parametrize("bad", ["12h", "soon", -5, 0, True, "200y", [30]])
def test_a_bad_crypto_period_is_refused_on_create_and_update(http: httpx.Client,
                                                             bad: object) -> None:
    error = assert_error(http.post("/v1/keys", json={
        "name": unique("cp/bad"), "spec": "aes-256-gcm", "crypto_period": bad}),
        400, "invalid_request")
    assert "crypto_period" in error["message"]
    name = unique("cp/ok")
    create_key(http, name, "aes-256-gcm")
    assert_error(http.patch(f"/v1/keys/{name}", json={"crypto_period": bad}),
                 400, "invalid_request")
    assert ok(http.get(f"/v1/keys/{name}"))["crypto_period"] is None
