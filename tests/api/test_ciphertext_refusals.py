"""A refused decrypt tells the caller nothing it may not know (security review F16).

- A ciphertext naming a key version that does not exist, or a key that does not
  exist, is the one vague ``invalid_ciphertext`` FORMAT.md 1.5 promises, like a
  failed tag check (it was 404 "key secret/x has no version 7").
- A caller refused a decrypt is not told the name of the key the ciphertext names
  (it was 403 "token may not decrypt secret/x", which maps key ids to names), but
  the audit record of the refusal names it: who tried to read what.
"""

from __future__ import annotations

import base64
import struct
import uuid
from typing import TYPE_CHECKING

import httpx
import pytest

from keyquorum.keys.ciphertext import PREFIX

if TYPE_CHECKING:
    from conftest import MintToken

pytestmark = pytest.mark.anyio

CONTEXT = {"tenant": "acme"}
KEY_ID = slice(4, 20)  # magic (2), format version (1), algorithm id (1), key id (16)
KEY_VERSION = slice(20, 24)  # u32 big-endian; FORMAT.md 1.1


def decode(text: str) -> bytearray:
    assert text.startswith(PREFIX)
    data = text[len(PREFIX):]
    return bytearray(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))


def encode(binary: bytes | bytearray) -> str:
    return PREFIX + base64.urlsafe_b64encode(binary).decode().rstrip("=")


def with_version(text: str, version: int) -> str:
    binary = decode(text)
    binary[KEY_VERSION] = struct.pack(">I", version)
    return encode(binary)


def with_key_id(text: str, key_id: uuid.UUID) -> str:
    binary = decode(text)
    binary[KEY_ID] = key_id.bytes
    return encode(binary)


def tampered(text: str) -> str:
    binary = decode(text)
    binary[-1] ^= 1  # the tag's last byte
    return encode(binary)


async def secret_ciphertext(api: httpx.AsyncClient) -> str:
    for name in ("secret/x", "app/y"):
        made = await api.post("/v1/keys", json={"name": name, "spec": "aes-256-gcm"})
        assert made.status_code == 200, made.text
    answer = await api.post("/v1/keys/secret/x/encrypt",
                            json={"plaintext": "c2VjcmV0", "context": CONTEXT})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["ciphertext"])


def error_of(answer: httpx.Response) -> tuple[int, str, str]:
    error = answer.json()["error"]
    return answer.status_code, error["code"], error["message"]


def test_the_ciphertext_helpers_read_the_format_of_format_md() -> None:
    vector_key = uuid.UUID(int=1)
    text = encode(b"KQ\x01\x01" + vector_key.bytes + struct.pack(">I", 7) + bytes(12 + 16))
    assert decode(text)[KEY_VERSION] == struct.pack(">I", 7)
    assert decode(with_version(text, 9))[KEY_VERSION] == struct.pack(">I", 9)
    assert bytes(decode(with_key_id(text, uuid.UUID(int=2)))[KEY_ID]) == uuid.UUID(int=2).bytes


@pytest.mark.parametrize("path", ["/v1/decrypt", "/v1/keys/secret/x/decrypt", "/v1/reencrypt"])
async def test_a_ciphertext_naming_a_version_that_does_not_exist_is_invalid_ciphertext(
        api: httpx.AsyncClient, path: str) -> None:
    ciphertext = await secret_ciphertext(api)
    bad_tag = await api.post(path, json={"ciphertext": tampered(ciphertext),
                                         "context": CONTEXT})

    for version in (7, 0, 2**32 - 1):
        answer = await api.post(path, json={"ciphertext": with_version(ciphertext, version),
                                            "context": CONTEXT})

        assert error_of(answer) == error_of(bad_tag)  # one vague answer for every bad one
        assert error_of(answer)[:2] == (400, "invalid_ciphertext")
        assert "secret/x" not in answer.text


async def test_a_ciphertext_naming_a_key_that_does_not_exist_is_invalid_ciphertext(
        api: httpx.AsyncClient) -> None:
    ciphertext = await secret_ciphertext(api)
    bad_tag = await api.post("/v1/decrypt", json={"ciphertext": tampered(ciphertext),
                                                  "context": CONTEXT})

    answer = await api.post("/v1/decrypt", json={
        "ciphertext": with_key_id(ciphertext, uuid.uuid4()), "context": CONTEXT})

    assert error_of(answer) == error_of(bad_tag)


async def test_a_refused_decrypt_does_not_name_the_key_but_its_audit_record_does(
        api: httpx.AsyncClient, mint_token: MintToken) -> None:
    ciphertext = await secret_ciphertext(api)
    token = await mint_token([{"keys": "app/*", "operations": ["decrypt", "reencrypt"]}])
    accessor = (await api.get("/v1/auth/tokens/self",
                              headers={"Authorization": f"Bearer {token}"})).json()["accessor"]

    for path in ("/v1/decrypt", "/v1/reencrypt"):
        answer = await api.post(path, headers={"Authorization": f"Bearer {token}"},
                                json={"ciphertext": ciphertext, "context": CONTEXT})

        assert error_of(answer)[:2] == (403, "forbidden")
        assert "secret" not in answer.json()["error"]["message"]

    records = (await api.get("/v1/audit", params={"key": "secret/x", "outcome": "denied"})
               ).json()["records"]
    assert sorted((r["operation"], r["identity"], r["key_version"], r["error_code"])
                  for r in records) == [("decrypt", accessor, 1, "forbidden"),
                                        ("reencrypt", accessor, 1, "forbidden")]


async def test_a_caller_who_may_not_decrypt_learns_nothing_from_the_version_field(
        api: httpx.AsyncClient, mint_token: MintToken) -> None:
    """Authorization comes before the version check: good and forged versions look alike."""
    ciphertext = await secret_ciphertext(api)
    token = await mint_token([{"keys": "app/*", "operations": ["decrypt"]}])
    headers = {"Authorization": f"Bearer {token}"}

    real = await api.post("/v1/decrypt", headers=headers,
                          json={"ciphertext": ciphertext, "context": CONTEXT})
    forged = await api.post("/v1/decrypt", headers=headers,
                            json={"ciphertext": with_version(ciphertext, 7),
                                  "context": CONTEXT})

    assert error_of(real) == error_of(forged)
    assert error_of(real)[0] == 403
