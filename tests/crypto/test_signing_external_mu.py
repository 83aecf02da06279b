"""ML-DSA's external mu (FIPS 204): a 64-byte mu signed is an ordinary ML-DSA signature of
the message; only ML-DSA takes it, only 64 bytes, and only named as ``external-mu``."""

from __future__ import annotations

import hashlib

import pytest

from keyquorum.crypto.errors import InvalidSignatureInput
from keyquorum.crypto.signing import EXTERNAL_MU, SigningKey, generate_private


def _mu(key: SigningKey, message: bytes) -> bytes:
    from cryptography.hazmat.primitives import serialization

    public = serialization.load_pem_public_key(key.public_pem().encode())
    tr = hashlib.shake_256(public.public_bytes_raw()).digest(64)  # type: ignore[union-attr]
    return hashlib.shake_256(tr + b"\x00\x00" + message).digest(64)


@pytest.mark.parametrize("alg", ["ml-dsa-44", "ml-dsa-65", "ml-dsa-87"])
def test_a_signed_mu_verifies_as_a_signature_of_the_message(alg: str) -> None:
    key = SigningKey(alg, generate_private(alg))
    mu = _mu(key, b"message")
    signature = key.sign(digest=mu, hash_name=EXTERNAL_MU)
    assert key.verify(signature, message=b"message")
    assert key.verify(signature, digest=mu, hash_name=EXTERNAL_MU)
    assert not key.verify(signature, message=b"other")


def test_only_ml_dsa_and_only_64_bytes() -> None:
    ml_dsa = SigningKey("ml-dsa-44", generate_private("ml-dsa-44"))
    with pytest.raises(InvalidSignatureInput):
        ml_dsa.sign(digest=b"x" * 32, hash_name=EXTERNAL_MU)
    with pytest.raises(InvalidSignatureInput):
        ml_dsa.sign(digest=b"x" * 64)  # a bare digest is still HashML-DSA: refused
    ecdsa = SigningKey("ecdsa-p256", generate_private("ecdsa-p256"))
    with pytest.raises(InvalidSignatureInput):
        ecdsa.sign(digest=b"x" * 64, hash_name=EXTERNAL_MU)
