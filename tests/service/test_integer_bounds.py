"""Every integer a key change stores has an upper bound, refused as 400 with the rule.

Review F3b: ``usage_limit`` of 2^63 ... 2^64-1 (orjson reads up to 2^64-1) reached
SQLite's 64-bit INTEGER and answered 500 (OverflowError), on POST and on PATCH.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from keyquorum.service.lifecycle import MAX_USAGE_LIMIT, MAX_VERSION
from kq_inprocess import InProcess, inprocess_app

TOO_BIG = [2**53, 2**63 - 1, 2**63, 2**64 - 1]


@pytest.fixture(scope="module")
def kq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcess]:
    with inprocess_app(tmp_path_factory.mktemp("bounds") / "data") as app:
        assert app.http.post("/v1/keys", json={"name": "bounds/k", "spec": "aes-256-gcm",
                                               "usage_limit": 10}).status_code == 200
        yield app


def refused(answer: object, rule: str) -> None:
    status, body = answer.status_code, answer.json()  # type: ignore[attr-defined]
    assert status == 400, body
    assert body["error"]["code"] == "invalid_request"
    assert body["error"]["message"] == rule


@pytest.mark.parametrize("value", TOO_BIG)
def test_create_refuses_a_usage_limit_past_2_pow_53(kq: InProcess, value: int) -> None:
    answer = kq.http.post("/v1/keys", json={"name": f"bounds/c{value}", "spec": "aes-256-gcm",
                                            "usage_limit": value})
    refused(answer, f"usage_limit must be an integer from 1 to {MAX_USAGE_LIMIT}")
    assert kq.http.get(f"/v1/keys/bounds/c{value}").status_code == 404


@pytest.mark.parametrize("value", TOO_BIG)
def test_patch_refuses_a_usage_limit_past_2_pow_53_and_keeps_the_old(kq: InProcess,
                                                                       value: int) -> None:
    refused(kq.http.patch("/v1/keys/bounds/k", json={"usage_limit": value}),
            f"usage_limit must be an integer from 1 to {MAX_USAGE_LIMIT}")
    assert kq.http.get("/v1/keys/bounds/k").json()["usage_limit"] == 10


def test_the_largest_usage_limit_is_stored_and_read_back_exactly(kq: InProcess) -> None:
    made = kq.http.post("/v1/keys", json={"name": "bounds/max", "spec": "aes-256-gcm",
                                          "usage_limit": MAX_USAGE_LIMIT})
    assert made.status_code == 200, made.text
    assert kq.http.get("/v1/keys/bounds/max").json()["usage_limit"] == MAX_USAGE_LIMIT
    patched = kq.http.patch("/v1/keys/bounds/k", json={"usage_limit": MAX_USAGE_LIMIT})
    assert patched.json()["usage_limit"] == MAX_USAGE_LIMIT
    assert kq.http.patch("/v1/keys/bounds/k", json={"usage_limit": 10}).status_code == 200


@pytest.mark.parametrize("value", [2**31, 2**63, 2**64 - 1])
def test_version_numbers_past_2_pow_31_are_refused_with_the_rule(kq: InProcess,
                                                                  value: int) -> None:
    refused(kq.http.patch("/v1/keys/bounds/k", json={"min_decrypt_version": value}),
            f"min_decrypt_version must be an integer from 1 to {MAX_VERSION}")
    refused(kq.http.post("/v1/keys/bounds/k/disable", json={"version": value}),
            f"version must be an integer from 1 to {MAX_VERSION}")
    refused(kq.http.post("/v1/keys/bounds/k/revoke", json={"version": value,
                                                          "reason": "superseded"}),
            f"version must be an integer from 1 to {MAX_VERSION}")
    key = kq.http.get("/v1/keys/bounds/k").json()
    assert key["state"] == "enabled" and key["versions"][0]["state"] == "active"
