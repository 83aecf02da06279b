"""The segment primitive: nonces, derivation, commitment, and failures that leave nothing."""

from __future__ import annotations

import hashlib
import os

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keyquorum.crypto.errors import InvalidCiphertext
from keyquorum.crypto.stream import (
    MAX_SEGMENTS,
    SegmentKey,
    commitment_matches,
    derive_stream_key,
    header_digest,
)

DATA_KEY = bytes(range(32))
SALT = bytes(range(32, 64))
PREFIX = bytes.fromhex("a0a1a2a3a4a5a6")
HEADER_HASH = hashlib.sha256(b"header").digest()


def test_the_nonce_is_prefix_counter_and_last_flag() -> None:
    key, _ = derive_stream_key(DATA_KEY, SALT, PREFIX, HEADER_HASH)
    assert key.nonce(0, False).hex() == "a0a1a2a3a4a5a6" + "00000000" + "00"
    assert key.nonce(258, True).hex() == "a0a1a2a3a4a5a6" + "00000102" + "01"
    with pytest.raises(ValueError, match="at most"):
        key.nonce(MAX_SEGMENTS, False)


def test_derivation_is_hkdf_sha256_split_into_key_and_commitment() -> None:
    key, commitment = derive_stream_key(DATA_KEY, SALT, PREFIX, HEADER_HASH)
    okm = HKDF(hashes.SHA256(), 64, SALT, b"keyquorum stream v1" + HEADER_HASH).derive(DATA_KEY)
    assert commitment == okm[32:]
    sealed = key.seal(3, True, b"segment")
    assert AESGCM(okm[:32]).decrypt(key.nonce(3, True), sealed, b"") == b"segment"


def test_the_header_hash_is_bound_once_set() -> None:
    key, _ = derive_stream_key(DATA_KEY, SALT, PREFIX, HEADER_HASH)
    key.bind_header(header_digest(b"whole header"))
    sealed = key.seal(0, True, b"x")
    other, _ = derive_stream_key(DATA_KEY, SALT, PREFIX, HEADER_HASH)
    other.bind_header(header_digest(b"another header"))
    with pytest.raises(InvalidCiphertext):
        other.open(0, True, sealed)


@pytest.mark.parametrize(("index", "last"), [(1, True), (0, False)])
def test_a_segment_opens_only_at_its_index_and_flag(index: int, last: bool) -> None:
    key, _ = derive_stream_key(DATA_KEY, SALT, PREFIX, HEADER_HASH)
    sealed = key.seal(0, True, b"data")
    assert key.open(0, True, sealed) == b"data"
    with pytest.raises(InvalidCiphertext):
        key.open(index, last, sealed)


def test_any_other_data_key_salt_or_header_gives_another_key_and_commitment() -> None:
    _, base = derive_stream_key(DATA_KEY, SALT, PREFIX, HEADER_HASH)
    for args in ((os.urandom(32), SALT, HEADER_HASH), (DATA_KEY, os.urandom(32), HEADER_HASH),
                 (DATA_KEY, SALT, hashlib.sha256(b"other").digest())):
        _, commitment = derive_stream_key(args[0], args[1], PREFIX, args[2])
        assert commitment != base
        assert not commitment_matches(commitment, base)
    assert commitment_matches(base, bytes(base))


def test_a_failed_open_zeroes_the_output_buffer() -> None:
    key, _ = derive_stream_key(DATA_KEY, SALT, PREFIX, HEADER_HASH)
    sealed = bytearray(key.seal(0, True, b"secret plaintext"))
    sealed[0] ^= 1  # OpenSSL writes the (wrong) plaintext before it checks the tag
    out = bytearray(len(sealed) - 16)
    with pytest.raises(InvalidCiphertext):
        key.open_into(0, True, bytes(sealed), out)
    assert out == bytearray(len(out))


def test_short_input_and_bad_sizes() -> None:
    key, _ = derive_stream_key(DATA_KEY, SALT, PREFIX, HEADER_HASH)
    with pytest.raises(InvalidCiphertext):
        key.open(0, True, b"\x00" * 15)
    with pytest.raises(ValueError, match="data keys"):
        derive_stream_key(b"short", SALT, PREFIX, HEADER_HASH)
    with pytest.raises(ValueError, match="salts"):
        derive_stream_key(DATA_KEY, b"short", PREFIX, HEADER_HASH)
    with pytest.raises(ValueError, match="nonce prefixes"):
        SegmentKey(bytes(32), b"short")
    assert repr(key) == "SegmentKey(alg='aes-256-gcm')"
