"""Bodies are read with a running limit; token-less routes read at most 16 KiB (review F6).

The review made the server buffer 400 MiB of a chunked body before answering 413,
and 4 anonymous 120 MiB bodies raised its memory by 1.3 GB. Now the front counts
bytes as they arrive and refuses the request the moment the limit is passed, with
or without ``Content-Length``; the routes that answer without a token (init,
unseal, rekey shares, custodian proofs) take at most 16 KiB whatever
``max_body_bytes`` says. The chunked tests count how much of the body the
server pulled before it answered.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httpx
import pytest

from keyquorum.service.core import Core

if TYPE_CHECKING:
    from conftest import CoreFactory

pytestmark = pytest.mark.anyio

LIMIT = 32 * 1024  # above the token-less routes' 16 KiB, so both limits show
TOKENLESS_LIMIT = 16 * 1024
CHUNK = 1024
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def core(make_core: CoreFactory) -> Core:
    return make_core(max_body_bytes=LIMIT)


class Dripped:
    """A chunked body ``{"share": "aaa…"}`` of about ``total`` bytes, sent ``CHUNK``
    bytes at a time, counting how many bytes the server asked for."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'{"share": "'
        while self.pulled < self.total:
            self.pulled += CHUNK
            yield b"a" * CHUNK
        yield b'"}'


def encrypt_body(plaintext_bytes: int) -> dict[str, str]:
    return {"plaintext": base64.b64encode(b"p" * plaintext_bytes).decode()}


def assert_too_large(answer: httpx.Response, limit: int) -> None:
    assert answer.status_code == 413, answer.text
    assert answer.json()["error"]["code"] == "too_large"
    assert str(limit) in answer.json()["error"]["message"]


async def test_a_body_under_the_limit_is_served(api: httpx.AsyncClient) -> None:
    await api.post("/v1/keys", json={"name": "app/k", "spec": "aes-256-gcm"})
    answer = await api.post("/v1/keys/app/k/encrypt", json=encrypt_body(20 * 1024))
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("path", ["/v1/keys/app/k/encrypt", "/v1/keys"])
async def test_a_body_over_max_body_bytes_is_too_large(api: httpx.AsyncClient,
                                                       path: str) -> None:
    await api.post("/v1/keys", json={"name": "app/k", "spec": "aes-256-gcm"})

    answer = await api.post(path, json=encrypt_body(LIMIT))

    assert_too_large(answer, LIMIT)


@pytest.mark.parametrize("path", ["/v1/keys/app/k/encrypt", "/v1/keys"])
async def test_a_chunked_body_is_cut_off_as_soon_as_it_passes_the_limit(
        api: httpx.AsyncClient, path: str) -> None:
    await api.post("/v1/keys", json={"name": "app/k", "spec": "aes-256-gcm"})
    body = Dripped(total=4 * 1024 * 1024)

    answer = await api.post(path, content=body, headers=JSON)

    assert answer.request.headers["transfer-encoding"] == "chunked"
    assert_too_large(answer, LIMIT)
    assert body.pulled <= LIMIT + 2 * CHUNK


TOKENLESS_ROUTES = ["/v1/sys/init", "/v1/sys/unseal", "/v1/sys/rekey/update"]
CUSTODIAN_ROUTES = ["/v1/sys/custodians/share-1/proof",
                    "/v1/sys/custodians/share-1/challenge"]


@pytest.mark.parametrize("path", [
    *TOKENLESS_ROUTES, *CUSTODIAN_ROUTES])
async def test_a_tokenless_route_refuses_a_body_over_16_kib_though_max_body_bytes_is_larger(
        anonymous_api: httpx.AsyncClient, path: str) -> None:
    answer = await anonymous_api.post(path, json={"share": "a" * (TOKENLESS_LIMIT + 1)})

    assert_too_large(answer, TOKENLESS_LIMIT)


@pytest.mark.parametrize("path", [
    *TOKENLESS_ROUTES, *CUSTODIAN_ROUTES])
async def test_a_tokenless_route_stops_reading_a_chunked_body_at_16_kib(
        anonymous_api: httpx.AsyncClient, path: str) -> None:
    body = Dripped(total=1024 * 1024)

    answer = await anonymous_api.post(path, content=body, headers=JSON)

    assert_too_large(answer, TOKENLESS_LIMIT)
    assert body.pulled <= TOKENLESS_LIMIT + 2 * CHUNK


@pytest.mark.parametrize("path", ["/v1/keys/app/k/encrypt", "/v1/random", "/v1/keys"])
async def test_a_request_without_a_token_is_refused_before_its_body_is_read(
        anonymous_api: httpx.AsyncClient, path: str) -> None:
    body = Dripped(total=LIMIT - 2 * CHUNK)  # under the limit: only the token can stop it

    answer = await anonymous_api.post(path, content=body, headers=JSON)

    assert body.pulled <= 2 * CHUNK, f"{body.pulled} bytes read, then {answer.text}"
    assert answer.status_code == 401, answer.text


async def test_an_unknown_token_is_refused_before_a_large_body_is_read(
        anonymous_api: httpx.AsyncClient) -> None:
    # Well formed, so only storage can say it is unknown: the front asks from a thread.
    unknown = "kq_" + "A" * 43
    body = Dripped(total=LIMIT - 2 * CHUNK)

    answer = await anonymous_api.post("/v1/keys/app/k/encrypt", content=body,
                                      headers={**JSON, "Authorization": f"Bearer {unknown}"})

    assert answer.status_code == 401, answer.text
    assert body.pulled <= 2 * CHUNK, f"{body.pulled} bytes read"


async def test_a_revoked_token_is_refused_before_a_large_body_is_read(
        api: httpx.AsyncClient, anonymous_api: httpx.AsyncClient) -> None:
    made = (await api.post("/v1/auth/tokens", json={"policies": ["root"]})).json()
    bearer = {**JSON, "Authorization": f"Bearer {made['token']}"}
    served = await anonymous_api.post("/v1/keys/app/k/encrypt", content=Dripped(total=CHUNK),
                                      headers=bearer)
    assert served.status_code != 401, served.text  # read from the cache on the loop
    revoked = await api.delete(f"/v1/auth/tokens/{made['accessor']}")
    assert revoked.status_code in (200, 204), revoked.text
    body = Dripped(total=LIMIT - 2 * CHUNK)

    answer = await anonymous_api.post("/v1/keys/app/k/encrypt", content=body, headers=bearer)

    assert answer.status_code == 401, answer.text
    assert body.pulled <= 2 * CHUNK, f"{body.pulled} bytes read"
