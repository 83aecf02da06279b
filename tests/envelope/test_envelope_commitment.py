"""Key commitment: a stream crafted to open under two data keys opens under one only.

AES-GCM alone does not commit to its key: someone who knows two keys can
write one ciphertext whose tag checks under both (the "invisible salamanders"
attack), so two recipients holding different wrapped copies would read two
different, both "authentic", plaintexts. This test builds exactly that stream,
checks that without the commitment the segment really would open under both
keys, and that the envelope refuses the second recipient before any segment.
"""

from __future__ import annotations

import hashlib
import io
import os

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from envelope.envelope_fakes import FakeKeyService
from keyquorum.envelope import (
    EnvelopeHeader,
    InvalidEnvelopeError,
    WrappedKey,
    decrypt_stream,
)
from keyquorum.keys.ciphertext import canonical_context

CONTEXT = {"tenant": "acme"}
_R = 0xE1 << 120


def gf_mul(x: int, y: int) -> int:
    """Multiplication in GCM's GF(2^128) (NIST SP 800-38D, algorithm 1)."""
    z, v = 0, y
    for i in range(128):
        if (x >> (127 - i)) & 1:
            z ^= v
        v = (v >> 1) ^ _R if v & 1 else v >> 1
    return z


def gf_inverse(x: int) -> int:
    result, base, exponent = 1 << 127, x, (1 << 128) - 2  # 1 << 127 is GCM's "1"
    while exponent:
        if exponent & 1:
            result = gf_mul(result, base)
        base = gf_mul(base, base)
        exponent >>= 1
    return result


def aes_block(key: bytes, block: bytes) -> int:
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # one block: H, E(J0)
    return int.from_bytes(encryptor.update(block) + encryptor.finalize(), "big")


def ghash_terms(key: bytes, nonce: bytes, aad: bytes) -> tuple[int, int]:
    """``(H, E(J0) ⊕ GHASH of the AAD and length blocks)`` for a 2-block ciphertext."""
    h = aes_block(key, bytes(16))
    blocks = [aad[i:i + 16].ljust(16, b"\0") for i in range(0, len(aad), 16)]
    n = len(blocks) + 3  # aad blocks, two ciphertext blocks, the length block
    acc = 0
    for i, block in enumerate(blocks, start=1):
        acc ^= gf_mul(int.from_bytes(block, "big"), pow_h(h, n - i + 1))
    lengths = (len(aad) * 8).to_bytes(8, "big") + (32 * 8).to_bytes(8, "big")
    acc ^= gf_mul(int.from_bytes(lengths, "big"), h)
    return h, acc ^ aes_block(key, nonce + b"\0\0\0\1")


def pow_h(h: int, e: int) -> int:
    out = 1 << 127
    for _ in range(e):
        out = gf_mul(out, h)
    return out


def segment_key(data_key: bytes, salt: bytes, prefix: bytes) -> bytes:
    info = b"keyquorum stream v1" + hashlib.sha256(prefix).digest()
    return HKDF(hashes.SHA256(), 64, salt, info).derive(data_key)


def test_a_stream_valid_under_two_data_keys_is_refused_for_the_second(keys: FakeKeyService
                                                                      ) -> None:
    k1, k2 = os.urandom(32), os.urandom(32)
    header = EnvelopeHeader(
        segment_size=64, context=canonical_context(CONTEXT),
        wrapped_keys=(WrappedKey("app/primary", keys.encrypt("app/primary", k1,
                                                             CONTEXT).ciphertext),
                      WrappedKey("app/dr", keys.encrypt("app/dr", k2, CONTEXT).ciphertext)),
        salt=os.urandom(32), nonce_prefix=os.urandom(7))
    prefix = header.encode_prefix()
    okm1, okm2 = segment_key(k1, header.salt, prefix), segment_key(k2, header.salt, prefix)
    raw = prefix + okm1[32:]  # the commitment can only be one key's: the first
    aad = hashlib.sha256(raw).digest()
    nonce = header.nonce_prefix + (0).to_bytes(4, "big") + b"\x01"  # segment 0, the last

    # Solve for ciphertext blocks c1, c2 whose tag is the same under both keys.
    h1, t1 = ghash_terms(okm1[:32], nonce, aad)
    h2, t2 = ghash_terms(okm2[:32], nonce, aad)
    c1 = int.from_bytes(os.urandom(16), "big")
    rhs = t1 ^ t2 ^ gf_mul(c1, pow_h(h1, 3) ^ pow_h(h2, 3))
    c2 = gf_mul(rhs, gf_inverse(pow_h(h1, 2) ^ pow_h(h2, 2)))
    tag = t1 ^ gf_mul(c1, pow_h(h1, 3)) ^ gf_mul(c2, pow_h(h1, 2))
    segment = c1.to_bytes(16, "big") + c2.to_bytes(16, "big") + tag.to_bytes(16, "big")
    stream = raw + segment

    # Without a commitment this would be accepted under both keys, as two plaintexts:
    first = AESGCM(okm1[:32]).decrypt(nonce, segment, aad)
    second = AESGCM(okm2[:32]).decrypt(nonce, segment, aad)
    assert first != second

    reader = io.BytesIO()
    decrypt_stream(io.BytesIO(stream), reader, context=CONTEXT, client=keys)
    assert reader.getvalue() == first  # the holder of the first copy reads it

    keys.forbidden = {"app/primary"}  # a recipient who can only open the second copy
    other = io.BytesIO()
    with pytest.raises(InvalidEnvelopeError):
        decrypt_stream(io.BytesIO(stream), other, context=CONTEXT, client=keys)
    assert other.getvalue() == b""
