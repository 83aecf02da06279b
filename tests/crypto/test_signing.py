"""Signatures: message and digest modes for every algorithm, the refusals that
keep callers from signing the wrong thing, and verification by public PEM."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from keyquorum.crypto.errors import InvalidSignatureInput, UnsupportedAlgorithm
from keyquorum.crypto.signing import (
    SIGNING_ALGORITHMS,
    SigningKey,
    generate_private,
    verify_with_public_pem,
)

MESSAGE = b"transfer 100 to alice"
PREHASH_ALGORITHMS = [a for a in SIGNING_ALGORITHMS if a.startswith(("ecdsa", "rsa"))]
MESSAGE_ONLY = [a for a in SIGNING_ALGORITHMS if a not in PREHASH_ALGORITHMS]
DEFAULT_HASH = {"ecdsa-p256": "sha256", "ecdsa-p384": "sha384", "ecdsa-p521": "sha512",
                "ecdsa-secp256k1": "sha256", "rsa-2048": "sha256", "rsa-3072": "sha256",
                "rsa-4096": "sha256"}


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    """One key per algorithm for the whole module: RSA-4096 keygen is slow."""
    return {alg: SigningKey(alg, generate_private(alg)) for alg in SIGNING_ALGORITHMS}


@pytest.mark.parametrize("alg", SIGNING_ALGORITHMS)
def test_message_round_trip(keys: dict[str, SigningKey], alg: str) -> None:
    key = keys[alg]
    signature = key.sign(message=MESSAGE)
    assert key.verify(signature, message=MESSAGE)
    assert not key.verify(signature, message=MESSAGE + b"0")
    assert verify_with_public_pem(alg, key.public_pem(), signature, message=MESSAGE)
    assert not verify_with_public_pem(alg, key.public_pem(), signature, message=b"other")


@pytest.mark.parametrize("alg", SIGNING_ALGORITHMS)
def test_tampered_or_garbage_signature_is_false_not_an_error(
    keys: dict[str, SigningKey], alg: str
) -> None:
    key = keys[alg]
    signature = key.sign(message=MESSAGE)
    for bad in (
        bytes([signature[0] ^ 1]) + signature[1:],
        signature[:-1] + bytes([signature[-1] ^ 0x80]),
        signature[:-1],
        b"",
        b"\x00" * 8,
    ):
        assert not key.verify(bad, message=MESSAGE)


@pytest.mark.parametrize("alg", SIGNING_ALGORITHMS)
def test_another_key_does_not_verify(keys: dict[str, SigningKey], alg: str) -> None:
    if alg == "rsa-4096":
        pytest.skip("a second RSA-4096 key is too slow; rsa-3072 covers the family")
    other = SigningKey(alg, generate_private(alg))
    assert not other.verify(keys[alg].sign(message=MESSAGE), message=MESSAGE)


@pytest.mark.parametrize("alg", PREHASH_ALGORITHMS)
@pytest.mark.parametrize("hash_name", ["sha256", "sha384", "sha512"])
def test_digest_signature_verifies_as_message_signature(
    keys: dict[str, SigningKey], alg: str, hash_name: str
) -> None:
    key = keys[alg]
    digest = hashlib.new(hash_name, MESSAGE).digest()
    signature = key.sign(digest=digest, hash_name=hash_name)
    assert key.verify(signature, digest=digest, hash_name=hash_name)
    assert key.verify(signature, message=MESSAGE, hash_name=hash_name)
    assert verify_with_public_pem(alg, key.public_pem(), signature, digest=digest,
                                  hash_name=hash_name)
    # And the other way: a message signature checks against the digest.
    signature = key.sign(message=MESSAGE, hash_name=hash_name)
    assert key.verify(signature, digest=digest, hash_name=hash_name)


@pytest.mark.parametrize("alg", PREHASH_ALGORITHMS)
def test_default_hash_is_used_for_digests(keys: dict[str, SigningKey], alg: str) -> None:
    key = keys[alg]
    digest = hashlib.new(DEFAULT_HASH[alg], MESSAGE).digest()
    signature = key.sign(message=MESSAGE)
    assert key.verify(signature, digest=digest)
    assert key.verify(key.sign(digest=digest), message=MESSAGE)


def test_ecdsa_is_der_and_rsa_is_pss_with_digest_length_salt(
    keys: dict[str, SigningKey],
) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    ec_public = serialization.load_pem_public_key(keys["ecdsa-p384"].public_pem().encode())
    assert isinstance(ec_public, ec.EllipticCurvePublicKey)
    signature = keys["ecdsa-p384"].sign(message=MESSAGE)
    decode_dss_signature(signature)  # raises if not DER
    ec_public.verify(signature, MESSAGE, ec.ECDSA(hashes.SHA384()))

    rsa_public = serialization.load_pem_public_key(keys["rsa-3072"].public_pem().encode())
    assert isinstance(rsa_public, rsa.RSAPublicKey) and rsa_public.key_size == 3072
    signature = keys["rsa-3072"].sign(message=MESSAGE)
    rsa_public.verify(signature, MESSAGE,
                      padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                      hashes.SHA256())


@pytest.mark.parametrize("alg", MESSAGE_ONLY)
def test_message_only_schemes_refuse_digests(keys: dict[str, SigningKey], alg: str) -> None:
    key = keys[alg]
    digest = hashlib.sha256(MESSAGE).digest()
    with pytest.raises(InvalidSignatureInput, match="signs messages, not digests"):
        key.sign(digest=digest)
    with pytest.raises(InvalidSignatureInput, match="signs messages, not digests"):
        key.verify(b"sig", digest=digest)
    with pytest.raises(InvalidSignatureInput, match="hash_name"):
        key.sign(message=MESSAGE, hash_name="sha256")


@pytest.mark.parametrize("alg", SIGNING_ALGORITHMS)
def test_exactly_one_of_message_or_digest(keys: dict[str, SigningKey], alg: str) -> None:
    key = keys[alg]
    with pytest.raises(InvalidSignatureInput, match="exactly one"):
        key.sign()
    with pytest.raises(InvalidSignatureInput, match="exactly one"):
        key.sign(message=MESSAGE, digest=bytes(32))
    with pytest.raises(InvalidSignatureInput, match="exactly one"):
        key.verify(b"x")


@pytest.mark.parametrize("alg", PREHASH_ALGORITHMS)
def test_digest_length_must_match_the_hash(keys: dict[str, SigningKey], alg: str) -> None:
    key = keys[alg]
    with pytest.raises(InvalidSignatureInput, match="sha384 digest is 48 bytes"):
        key.sign(digest=bytes(32), hash_name="sha384")
    with pytest.raises(InvalidSignatureInput):
        key.sign(digest=bytes(20), hash_name="sha256")
    with pytest.raises(InvalidSignatureInput):
        key.verify(b"x", digest=bytes(31), hash_name="sha256")
    with pytest.raises(InvalidSignatureInput, match="hash_name must be one of"):
        key.sign(message=MESSAGE, hash_name="md5")


def test_private_material_shapes(keys: dict[str, SigningKey]) -> None:
    for alg in MESSAGE_ONLY:
        assert len(generate_private(alg)) == 32
    der = generate_private("ecdsa-p256")
    loaded = serialization.load_der_private_key(der, password=None)
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    assert isinstance(loaded.curve, ec.SECP256R1)


def test_public_pem_is_spki(keys: dict[str, SigningKey]) -> None:
    for alg, key in keys.items():
        pem = key.public_pem()
        assert pem.startswith("-----BEGIN PUBLIC KEY-----"), alg
        assert serialization.load_pem_public_key(pem.encode()) is not None


def test_material_of_another_algorithm_is_refused() -> None:
    p256 = generate_private("ecdsa-p256")
    with pytest.raises(ValueError, match="not a valid ecdsa-p384"):
        SigningKey("ecdsa-p384", p256)
    with pytest.raises(ValueError, match="not a valid rsa-3072"):
        SigningKey("rsa-3072", p256)
    with pytest.raises(ValueError):
        SigningKey("ed25519", bytes(31))
    with pytest.raises(ValueError):
        SigningKey("ml-dsa-44", bytes(64))
    with pytest.raises(ValueError):
        SigningKey("ecdsa-p256", b"not der")
    ed_raw = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    with pytest.raises(ValueError):
        SigningKey("ecdsa-p256", ed_raw)


def test_errors_never_echo_private_material() -> None:
    secret = generate_private("ecdsa-p256")
    with pytest.raises(ValueError) as info:
        SigningKey("ecdsa-p384", secret)
    assert secret.hex() not in str(info.value) and repr(secret) not in str(info.value)


def test_verify_with_public_pem_refuses_mismatched_keys(keys: dict[str, SigningKey]) -> None:
    signature = keys["ed25519"].sign(message=MESSAGE)
    with pytest.raises(ValueError):
        verify_with_public_pem("ecdsa-p256", keys["ed25519"].public_pem(), signature,
                               message=MESSAGE)
    with pytest.raises(ValueError):
        verify_with_public_pem("ed25519", "garbage", signature, message=MESSAGE)


def test_repr_and_unknown_algorithm(keys: dict[str, SigningKey]) -> None:
    assert repr(keys["ed25519"]) == "SigningKey(alg='ed25519')"
    with pytest.raises(UnsupportedAlgorithm):
        generate_private("dsa-1024")
    with pytest.raises(UnsupportedAlgorithm):
        SigningKey("ed448", bytes(57))
