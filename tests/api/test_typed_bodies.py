"""Every body is parsed by its typed model: wrong types, unknown fields and numbers out
of range are 400 ``invalid_request``, never a 500 or a silent yes (reliability review
F3a, F3b, F9), and a batch answers each bad item with the error shape of a request.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.anyio


async def make_key(api: httpx.AsyncClient, name: str = "app/k") -> dict[str, Any]:
    made = await api.post("/v1/keys", json={"name": name, "spec": "aes-256-gcm"})
    assert made.status_code == 200, made.text
    return dict(made.json())


def assert_invalid_request(answer: httpx.Response) -> None:
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize("bits", [256.5, 1e300, True, "256", 255, None])
async def test_datakey_bits_must_be_an_integer_size(api: httpx.AsyncClient,
                                                    bits: object) -> None:
    await make_key(api)

    answer = await api.post("/v1/keys/app/k/datakey", json={"bits": bits})

    assert_invalid_request(answer)
    assert answer.json()["error"]["message"].startswith("bits")


@pytest.mark.parametrize("bits", [256.0, 128.0, 512.0])
async def test_datakey_bits_written_as_whole_floats_are_integers(api: httpx.AsyncClient,
                                                                 bits: float) -> None:
    """JSON has one number type, and JSON Schema counts 256.0 as the integer 256: the
    reliability review's 500 (F3a) is now the size asked for, never a server error."""
    await make_key(api)

    answer = await api.post("/v1/keys/app/k/datakey", json={"bits": bits})

    assert answer.status_code == 200, answer.text
    assert len(base64.b64decode(answer.json()["plaintext"])) == int(bits) // 8


async def test_datakey_with_integer_bits_is_served(api: httpx.AsyncClient) -> None:
    await make_key(api)

    answer = await api.post("/v1/keys/app/k/datakey", json={"bits": 256})

    assert answer.status_code == 200, answer.text
    assert len(base64.b64decode(answer.json()["plaintext"])) == 32


@pytest.mark.parametrize("body", [{"junk": 1}, {"version": 2}, {"force": True}])
async def test_rotate_refuses_unknown_fields_and_does_not_rotate(api: httpx.AsyncClient,
                                                                 body: dict[str, Any]) -> None:
    await make_key(api)

    answer = await api.post("/v1/keys/app/k/rotate", json=body)

    assert_invalid_request(answer)
    assert (await api.get("/v1/keys/app/k")).json()["primary_version"] == 1


@pytest.mark.parametrize("usage_limit", [2**63, 2**64 - 1, 2**53, 0, -1, 1.5, True])
async def test_a_usage_limit_out_of_range_is_refused_and_nothing_is_created(
        api: httpx.AsyncClient, usage_limit: object) -> None:
    answer = await api.post("/v1/keys", json={"name": "app/k", "spec": "aes-256-gcm",
                                              "usage_limit": usage_limit})

    assert_invalid_request(answer)
    assert (await api.get("/v1/keys/app/k")).status_code == 404


@pytest.mark.parametrize("usage_limit", [2**63, 2**53])
async def test_a_usage_limit_out_of_range_is_refused_by_patch_and_nothing_changes(
        api: httpx.AsyncClient, usage_limit: int) -> None:
    await make_key(api)

    answer = await api.patch("/v1/keys/app/k", json={"usage_limit": usage_limit})

    assert_invalid_request(answer)
    assert (await api.get("/v1/keys/app/k")).json()["usage_limit"] is None


async def test_the_largest_usage_limit_api_md_allows_is_accepted(
        api: httpx.AsyncClient) -> None:
    answer = await api.post("/v1/keys", json={"name": "app/k", "spec": "aes-256-gcm",
                                              "usage_limit": 2**53 - 1})

    assert answer.status_code == 200, answer.text
    assert answer.json()["usage_limit"] == 2**53 - 1


BAD_ITEMS = [
    {"plaintext": "not base64!"},
    {"plaintext": "aGk=", "junk": 1},
    {},
    {"plaintext": "aGk=", "context": {"tenant": 7}},
]


async def test_a_batch_answers_each_bad_item_with_the_error_a_single_request_gets(
        api: httpx.AsyncClient) -> None:
    await make_key(api)
    singles = []
    for item in BAD_ITEMS:
        single = await api.post("/v1/keys/app/k/encrypt", json=item)
        assert_invalid_request(single)
        singles.append(single.json()["error"])

    answer = await api.post("/v1/keys/app/k/encrypt",
                            json={"batch": [{"plaintext": "aGk="}, *BAD_ITEMS, "not an object"]})

    assert answer.status_code == 200, answer.text
    good, *bad, not_an_object = answer.json()["results"]
    assert good["ciphertext"].startswith("kq1:")
    for item, single in zip(bad, singles, strict=True):
        # the same {"error": {code, message}}; the request id is the batch's own
        assert item == {"error": {"code": single["code"], "message": single["message"]}}
    assert not_an_object == {"error": {"code": "invalid_request",
                                       "message": "each item must be a JSON object"}}


async def test_a_decrypt_batch_answers_per_item_refusals_in_the_same_shape(
        api: httpx.AsyncClient) -> None:
    await make_key(api)
    good = (await api.post("/v1/keys/app/k/encrypt", json={"plaintext": "aGk="})).json()
    single_bad = (await api.post("/v1/decrypt", json={"ciphertext": "kq1:AAAA"})).json()

    answer = await api.post("/v1/decrypt", json={"batch": [
        {"ciphertext": good["ciphertext"]}, {"ciphertext": "kq1:AAAA"}]})

    assert answer.status_code == 200, answer.text
    opened, refused = answer.json()["results"]
    assert opened["plaintext"] == "aGk="
    assert refused == {"error": {"code": single_bad["error"]["code"],
                                 "message": single_bad["error"]["message"]}}
