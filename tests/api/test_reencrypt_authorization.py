"""``reencrypt`` is not a way to read data (security review F4).

Moving a ciphertext to the primary version of its own key, under the same
context, reveals nothing: the result can be read only by whoever could read the
source, so ``reencrypt`` on the source is enough. Moving it to another key, or
to another (or no) context, is a way to read it, so it needs ``decrypt`` on the
source and ``encrypt`` on the destination, as AWS KMS splits ReEncryptFrom/To.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from conftest import MintToken

pytestmark = pytest.mark.anyio

SECRET = b"TOP SECRET PAN 4111"
CONTEXT = {"tenant": "acme"}
REENCRYPT_EVERYWHERE_DECRYPT_APP = [
    {"keys": "**", "operations": ["reencrypt"]},
    {"keys": "app/*", "operations": ["decrypt", "encrypt"]},
]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def secret_ciphertext(api: httpx.AsyncClient) -> str:
    """Keys ``secret/x`` and ``app/y``; the secret encrypted under ``secret/x``."""
    for name in ("secret/x", "app/y"):
        made = await api.post("/v1/keys", json={"name": name, "spec": "aes-256-gcm"})
        assert made.status_code == 200, made.text
    answer = await api.post("/v1/keys/secret/x/encrypt", json={
        "plaintext": base64.b64encode(SECRET).decode(), "context": CONTEXT})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["ciphertext"])


def assert_forbidden(answer: httpx.Response) -> None:
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"]["code"] == "forbidden"
    assert "secret/x" not in answer.json()["error"]["message"]


async def test_reencrypt_to_a_key_the_caller_can_read_needs_decrypt_on_the_source(
        api: httpx.AsyncClient, mint_token: MintToken) -> None:
    ciphertext = await secret_ciphertext(api)
    token = await mint_token(REENCRYPT_EVERYWHERE_DECRYPT_APP)

    decrypted = await api.post("/v1/decrypt", headers=bearer(token),
                               json={"ciphertext": ciphertext, "context": CONTEXT})
    assert_forbidden(decrypted)
    moved = await api.post("/v1/reencrypt", headers=bearer(token), json={
        "ciphertext": ciphertext, "context": CONTEXT,
        "destination_key": "app/y", "destination_context": {}})
    assert_forbidden(moved)
    moved_keeping_context = await api.post("/v1/reencrypt", headers=bearer(token), json={
        "ciphertext": ciphertext, "context": CONTEXT, "destination_key": "app/y"})
    assert_forbidden(moved_keeping_context)


async def test_reencrypt_cannot_strip_the_context_without_decrypt_on_the_source(
        api: httpx.AsyncClient, mint_token: MintToken) -> None:
    ciphertext = await secret_ciphertext(api)
    token = await mint_token(REENCRYPT_EVERYWHERE_DECRYPT_APP)

    for destination_context in ({}, None, {"tenant": "evil"}):
        stripped = await api.post("/v1/reencrypt", headers=bearer(token), json={
            "ciphertext": ciphertext, "context": CONTEXT,
            "destination_key": "secret/x", "destination_context": destination_context})
        assert_forbidden(stripped)


async def test_reencrypt_alone_moves_a_ciphertext_unchanged_to_the_new_primary_version(
        api: httpx.AsyncClient, mint_token: MintToken) -> None:
    ciphertext = await secret_ciphertext(api)
    rotated = await api.post("/v1/keys/secret/x/rotate", json={})
    assert rotated.status_code == 200, rotated.text
    token = await mint_token(REENCRYPT_EVERYWHERE_DECRYPT_APP)

    implicit = await api.post("/v1/reencrypt", headers=bearer(token),
                              json={"ciphertext": ciphertext, "context": CONTEXT})
    explicit = await api.post("/v1/reencrypt", headers=bearer(token), json={
        "ciphertext": ciphertext, "context": CONTEXT,
        "destination_key": "secret/x", "destination_context": CONTEXT})

    for moved in (implicit, explicit):
        assert moved.status_code == 200, moved.text
        assert moved.json()["key_version"] == 2
        new_ciphertext = moved.json()["ciphertext"]
        # still only for whoever could read the source: not the caller ...
        assert_forbidden(await api.post("/v1/decrypt", headers=bearer(token), json={
            "ciphertext": new_ciphertext, "context": CONTEXT}))
        # ... and the same secret, under the same context, for root
        opened = await api.post("/v1/decrypt", json={"ciphertext": new_ciphertext,
                                                     "context": CONTEXT})
        assert opened.status_code == 200, opened.text
        assert base64.b64decode(opened.json()["plaintext"]) == SECRET
        assert (await api.post("/v1/decrypt", json={"ciphertext": new_ciphertext})
                ).json()["error"]["code"] == "invalid_ciphertext"


async def test_reencrypt_with_decrypt_on_the_source_and_encrypt_on_the_destination_round_trips(
        api: httpx.AsyncClient, mint_token: MintToken) -> None:
    ciphertext = await secret_ciphertext(api)
    token = await mint_token([
        {"keys": "secret/*", "operations": ["reencrypt", "decrypt"]},
        {"keys": "app/*", "operations": ["encrypt", "decrypt"]},
    ])

    moved = await api.post("/v1/reencrypt", headers=bearer(token), json={
        "ciphertext": ciphertext, "context": CONTEXT,
        "destination_key": "app/y", "destination_context": {}})

    assert moved.status_code == 200, moved.text
    opened = await api.post("/v1/decrypt", headers=bearer(token),
                            json={"ciphertext": moved.json()["ciphertext"], "context": {}})
    assert opened.status_code == 200, opened.text
    assert opened.json()["key"] == "app/y"
    assert base64.b64decode(opened.json()["plaintext"]) == SECRET


async def test_reencrypt_to_another_key_needs_encrypt_on_the_destination(
        api: httpx.AsyncClient, mint_token: MintToken) -> None:
    ciphertext = await secret_ciphertext(api)
    token = await mint_token([
        {"keys": "secret/*", "operations": ["reencrypt", "decrypt"]},
        {"keys": "app/*", "operations": ["reencrypt", "decrypt"]},  # no encrypt
    ])

    moved = await api.post("/v1/reencrypt", headers=bearer(token), json={
        "ciphertext": ciphertext, "context": CONTEXT, "destination_key": "app/y"})

    assert moved.status_code == 403, moved.text
    assert moved.json()["error"]["code"] == "forbidden"
