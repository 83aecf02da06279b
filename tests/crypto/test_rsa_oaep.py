"""RSAES-OAEP for RSA encryption keys: interoperable with pyca's own OAEP both ways,
one vague error for every bad ciphertext, and the plaintext bound of RFC 8017."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from keyquorum.crypto.errors import InvalidCiphertext, InvalidSignatureInput
from keyquorum.crypto.rsa_oaep import OaepKey, encrypt_with_public_pem, max_plaintext
from keyquorum.crypto.signing import generate_private

_PYCA = {"sha256": hashes.SHA256(), "sha1": hashes.SHA1()}


@pytest.fixture(scope="module")
def key() -> OaepKey:
    return OaepKey("rsa-2048", generate_private("rsa-2048"))


def _public(key: OaepKey) -> rsa.RSAPublicKey:
    public = serialization.load_pem_public_key(key.public_pem().encode())
    assert isinstance(public, rsa.RSAPublicKey)
    return public


@pytest.mark.parametrize("hash_name", ["sha256", "sha1"])
def test_a_client_encrypting_with_pyca_is_decrypted(key: OaepKey, hash_name: str) -> None:
    algorithm = _PYCA[hash_name]
    pad = padding.OAEP(mgf=padding.MGF1(algorithm), algorithm=algorithm, label=None)
    ciphertext = _public(key).encrypt(b"card 4111", pad)
    assert key.decrypt(ciphertext, hash_name) == b"card 4111"
    other = "sha1" if hash_name == "sha256" else "sha256"
    with pytest.raises(InvalidCiphertext):
        key.decrypt(ciphertext, other)  # the hash is part of the scheme


def test_server_and_public_pem_encryption_are_randomized_oaep(key: OaepKey) -> None:
    one = key.encrypt(b"x")
    two = encrypt_with_public_pem("rsa-2048", key.public_pem(), b"x")
    assert one != two and len(one) == len(two) == 256
    assert key.decrypt(one) == key.decrypt(two) == b"x"


def test_every_bad_ciphertext_is_the_same_vague_error(key: OaepKey) -> None:
    good = key.encrypt(b"secret")
    messages = set()
    for bad in (good[:-1], good + b"\x00", bytes(256), bytes([good[0] ^ 1]) + good[1:], b""):
        with pytest.raises(InvalidCiphertext) as info:
            key.decrypt(bad)
        messages.add(str(info.value))
    assert len(messages) == 1 and "secret" not in messages.pop()


def test_plaintext_bound_is_k_minus_two_hashes_minus_two(key: OaepKey) -> None:
    assert max_plaintext("rsa-2048", "sha256") == 190
    assert max_plaintext("rsa-2048", "sha1") == 214
    assert max_plaintext("rsa-4096") == 446
    assert key.decrypt(key.encrypt(bytes(190))) == bytes(190)
    with pytest.raises(InvalidSignatureInput, match="at most 190 bytes"):
        key.encrypt(bytes(191))
    with pytest.raises(InvalidSignatureInput, match="OAEP hash must be one of"):
        key.encrypt(b"x", "md5")


def test_material_must_be_the_named_size_and_reprs_hide_it() -> None:
    material = generate_private("rsa-2048")
    with pytest.raises(ValueError, match="not a valid rsa-3072"):
        OaepKey("rsa-3072", material)
    with pytest.raises(ValueError):
        OaepKey("rsa-2048", generate_private("ecdsa-p256"))
    assert repr(OaepKey("rsa-2048", material)) == "OaepKey(alg='rsa-2048')"
