"""The kq1 format: known-answer vectors decrypted with pyca/libsodium directly,
and every way of tampering with a ciphertext ends in the same InvalidCiphertext."""

from __future__ import annotations

import base64
import json
import struct
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESGCMSIV, ChaCha20Poly1305
from nacl import bindings as sodium

from keyquorum.crypto.aead import AEAD_ALGORITHMS, AeadKey, generate_key
from keyquorum.crypto.errors import InvalidCiphertext
from keyquorum.keys.ciphertext import (
    CiphertextHeader,
    canonical_context,
    encode_ciphertext,
    open_with,
    parse_ciphertext,
    seal_with,
)

VECTORS = json.loads(
    (Path(__file__).parent.parent / "vectors" / "ciphertext.json").read_text("utf-8")
)["vectors"]
KEY_ID = uuid.UUID("6f1c2a8e-93d4-4b7a-8c55-0d1e2f3a4b5c")


def _raw(text: str) -> bytes:
    body = text.removeprefix("kq1:")
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def _text(raw: bytes) -> str:
    return "kq1:" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _context_by_hand(context: dict[str, str]) -> bytes:
    items = sorted((k.encode(), v.encode()) for k, v in context.items())
    out = struct.pack(">H", len(items))
    for k, v in items:
        out += struct.pack(">H", len(k)) + k + struct.pack(">I", len(v)) + v
    return out


def _decrypt_directly(alg: str, key: bytes, nonce: bytes, body: bytes, aad: bytes) -> bytes:
    if alg == "xchacha20-poly1305":
        return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(body, aad, nonce, key)
    cipher = {"aes-256-gcm": AESGCM, "chacha20-poly1305": ChaCha20Poly1305,
              "aes-256-gcm-siv": AESGCMSIV, "aes-128-gcm": AESGCM}[alg]
    return cipher(key).decrypt(nonce, body, aad)


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: f"{v['algorithm']}-{v['key_version']}")
def test_vector_decrypts_with_the_library_directly(vector: dict) -> None:
    raw = _raw(vector["text"])
    nonce_len = 24 if vector["algorithm"] == "xchacha20-poly1305" else 12
    magic, version, alg_id, key_id, key_version = struct.unpack(">2sBB16sI", raw[:24])
    assert (magic, version) == (b"KQ", 1)
    assert alg_id == {"aes-256-gcm": 1, "chacha20-poly1305": 2, "xchacha20-poly1305": 3,
                      "aes-256-gcm-siv": 4}[vector["algorithm"]]
    assert uuid.UUID(bytes=key_id) == uuid.UUID(vector["key_id"])
    assert key_version == vector["key_version"]
    header = raw[: 24 + nonce_len]
    assert header.hex() == vector["header_hex"]
    assert _context_by_hand(vector["context"]).hex() == vector["context_hex"]
    plaintext = _decrypt_directly(
        vector["algorithm"],
        bytes.fromhex(vector["key_hex"]),
        raw[24 : 24 + nonce_len],
        raw[24 + nonce_len :],
        header + bytes.fromhex(vector["context_hex"]),
    )
    assert plaintext.hex() == vector["plaintext_hex"]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: f"{v['algorithm']}-{v['key_version']}")
def test_encoder_reproduces_vector_and_parser_reads_it(vector: dict) -> None:
    aead = AeadKey(vector["algorithm"], bytes.fromhex(vector["key_hex"]))
    text = seal_with(
        aead,
        uuid.UUID(vector["key_id"]),
        vector["key_version"],
        bytes.fromhex(vector["plaintext_hex"]),
        vector["context"],
        nonce=bytes.fromhex(vector["nonce_hex"]),
    )
    assert text == vector["text"]
    assert canonical_context(vector["context"]).hex() == vector["context_hex"]
    header, header_bytes, body = parse_ciphertext(text)
    assert header == CiphertextHeader(1, vector["algorithm"], uuid.UUID(vector["key_id"]),
                                      vector["key_version"], bytes.fromhex(vector["nonce_hex"]))
    assert header_bytes.hex() == vector["header_hex"] == header.encode().hex()
    assert body.hex() == vector["body_hex"]
    assert encode_ciphertext(header, body) == text
    assert open_with(aead, header, header_bytes, body, vector["context"]).hex() == (
        vector["plaintext_hex"]
    )


@pytest.fixture(params=AEAD_ALGORITHMS)
def sealed(request: pytest.FixtureRequest) -> tuple[AeadKey, str]:
    aead = AeadKey(request.param, generate_key(request.param))
    return aead, seal_with(aead, KEY_ID, 5, b"attack at dawn", {"tenant": "acme"})


def _open(aead: AeadKey, text: str, context: dict[str, str] | None) -> bytes:
    header, header_bytes, body = parse_ciphertext(text)
    return open_with(aead, header, header_bytes, body, context)


def test_round_trip(sealed: tuple[AeadKey, str]) -> None:
    aead, text = sealed
    assert text.startswith("kq1:")
    assert _open(aead, text, {"tenant": "acme"}) == b"attack at dawn"


def test_every_byte_flip_of_header_and_body_is_rejected(sealed: tuple[AeadKey, str]) -> None:
    aead, text = sealed
    raw = _raw(text)
    for position in range(len(raw)):
        for bit in (0x01, 0x80):
            tampered = bytearray(raw)
            tampered[position] ^= bit
            with pytest.raises(InvalidCiphertext):
                _open(aead, _text(bytes(tampered)), {"tenant": "acme"})


@pytest.mark.parametrize(
    "context", [None, {}, {"tenant": "acme2"}, {"tenant": "acme", "x": "y"}, {"Tenant": "acme"}]
)
def test_wrong_context_is_rejected(sealed: tuple[AeadKey, str], context: dict | None) -> None:
    aead, text = sealed
    with pytest.raises(InvalidCiphertext):
        _open(aead, text, context)


def test_every_truncation_is_rejected(sealed: tuple[AeadKey, str]) -> None:
    aead, text = sealed
    raw = _raw(text)
    for length in range(len(raw)):
        with pytest.raises(InvalidCiphertext):
            _open(aead, _text(raw[:length]), {"tenant": "acme"})


def test_appended_bytes_are_rejected(sealed: tuple[AeadKey, str]) -> None:
    aead, text = sealed
    with pytest.raises(InvalidCiphertext):
        _open(aead, _text(_raw(text) + b"\x00"), {"tenant": "acme"})


def test_wrong_key_is_rejected(sealed: tuple[AeadKey, str]) -> None:
    aead, text = sealed
    other = AeadKey(aead.alg, generate_key(aead.alg))
    with pytest.raises(InvalidCiphertext):
        _open(other, text, {"tenant": "acme"})


def test_key_of_another_algorithm_is_rejected(sealed: tuple[AeadKey, str]) -> None:
    aead, text = sealed
    other_alg = next(a for a in AEAD_ALGORITHMS if a != aead.alg)
    with pytest.raises(InvalidCiphertext):
        _open(AeadKey(other_alg, bytes(32)), text, {"tenant": "acme"})


@pytest.mark.parametrize(
    "text",
    [
        "",
        "kq1:",
        "kq2:S1EBAQ",
        "KQ1:S1EBAQARIjNEVWZ3iJmqu8zd7v8AAAABoKGio6Slpqeoqaqrjn0QQSrnItQHHPamaAi1s0KvzlxgAr3X",
        "S1EBAQARIjNEVWZ3iJmqu8zd7v8AAAABoKGio6Slpqeoqaqrjn0QQSrnItQHHPamaAi1s0KvzlxgAr3X",
        "kq1:S1EBAQ==",
        "kq1:S1EB AQ",
        "kq1:S1EB+AQ/",
        "kq1:S1EBA",
        "kq1:!!!!",
        "kq1:S1EBAQ\n",
        "kq1:\u00e9\u00e9\u00e9\u00e9",
    ],
)
def test_malformed_text_is_rejected(text: str) -> None:
    with pytest.raises(InvalidCiphertext):
        parse_ciphertext(text)


def test_non_canonical_base64_is_rejected() -> None:
    text = VECTORS[0]["text"]
    # 68 raw bytes: the last character carries 4 data bits and 2 unused bits.
    assert len(_raw(text)) % 3 == 2
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    mutated = text[:-1] + alphabet[alphabet.index(text[-1]) ^ 1]
    assert _raw(mutated) == _raw(text)  # a lenient decoder would accept it
    with pytest.raises(InvalidCiphertext):
        parse_ciphertext(mutated)


@pytest.mark.parametrize("version, alg_id", [(0, 1), (2, 1), (1, 0), (1, 6), (1, 255)])
def test_unknown_version_or_algorithm_is_rejected(version: int, alg_id: int) -> None:
    raw = bytearray(_raw(VECTORS[0]["text"]))
    raw[2], raw[3] = version, alg_id
    with pytest.raises(InvalidCiphertext):
        parse_ciphertext(_text(bytes(raw)))


def test_parse_errors_do_not_say_which_check_failed() -> None:
    messages = set()
    for text in ["nope", "kq1:!!", "kq1:AAAA", _text(_raw(VECTORS[0]["text"])[:-1])]:
        with pytest.raises(InvalidCiphertext) as info:
            header, header_bytes, body = parse_ciphertext(text)
            open_with(AeadKey("aes-256-gcm", bytes(range(32))), header, header_bytes, body, {})
        messages.add(str(info.value))
    assert len(messages) == 1


def test_canonical_context_is_order_free_and_exact() -> None:
    assert canonical_context(None) == canonical_context({}) == b"\x00\x00"
    assert canonical_context({"a": "1", "b": "2"}) == canonical_context({"b": "2", "a": "1"})
    assert canonical_context({"a": "1", "b": "2"}) == bytes.fromhex(
        "0002" "0001" "61" "00000001" "31" "0001" "62" "00000001" "32"
    )
    # Lengths make it unambiguous: no way to shift bytes between key and value.
    assert canonical_context({"ab": "c"}) != canonical_context({"a": "bc"})
    assert canonical_context({"a": "b\x00\x01c"}) != canonical_context({"a": "b", "c": ""})


def test_canonical_context_sorts_by_utf8_bytes() -> None:
    # U+FF5E sorts after U+1F600 in UTF-16 but before it in UTF-8 bytes.
    encoded = canonical_context({"\U0001f600": "x", "\uff5e": "y"})
    assert encoded.index("\uff5e".encode()) < encoded.index("\U0001f600".encode())


@pytest.mark.parametrize("context", [{1: "a"}, {"a": 1}, {"a": b"x"}, {"\ud800": "x"}, ["a"]])
def test_canonical_context_refuses_non_strings(context: object) -> None:
    with pytest.raises(ValueError):
        canonical_context(context)  # type: ignore[arg-type]


def test_header_refuses_bad_fields() -> None:
    good = CiphertextHeader(1, "aes-256-gcm", KEY_ID, 1, bytes(12))
    assert len(good.encode()) == 2 + 1 + 1 + 16 + 4 + 12
    for bad in [
        CiphertextHeader(2, "aes-256-gcm", KEY_ID, 1, bytes(12)),
        CiphertextHeader(1, "des", KEY_ID, 1, bytes(12)),
        CiphertextHeader(1, "aes-256-gcm", KEY_ID, -1, bytes(12)),
        CiphertextHeader(1, "aes-256-gcm", KEY_ID, 2**32, bytes(12)),
        CiphertextHeader(1, "aes-256-gcm", KEY_ID, 1, bytes(24)),
    ]:
        with pytest.raises(ValueError):
            bad.encode()


def test_nonces_are_fresh_per_seal() -> None:
    aead = AeadKey("aes-256-gcm", generate_key("aes-256-gcm"))
    texts = {seal_with(aead, KEY_ID, 1, b"same", None) for _ in range(50)}
    assert len(texts) == 50
