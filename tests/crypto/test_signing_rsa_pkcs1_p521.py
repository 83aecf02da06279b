"""RSA-2048, ECDSA P-521 and RSASSA-PKCS1-v1_5: the compatibility additions, checked
against pyca's own primitives so a wrong padding, curve or size cannot pass."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from keyquorum.crypto.ecdsa_format import der_to_raw, raw_to_der
from keyquorum.crypto.errors import InvalidSignatureInput
from keyquorum.crypto.signing import SigningKey, generate_private, verify_with_public_pem

MESSAGE = b"pay 5 to bob"


@pytest.fixture(scope="module")
def rsa2048() -> SigningKey:
    return SigningKey("rsa-2048", generate_private("rsa-2048"))


@pytest.fixture(scope="module")
def p521() -> SigningKey:
    return SigningKey("ecdsa-p521", generate_private("ecdsa-p521"))


def _rsa_public(key: SigningKey) -> rsa.RSAPublicKey:
    public = serialization.load_pem_public_key(key.public_pem().encode())
    assert isinstance(public, rsa.RSAPublicKey)
    return public


def test_rsa_2048_material_is_a_2048_bit_key_with_e_65537(rsa2048: SigningKey) -> None:
    public = _rsa_public(rsa2048)
    assert public.key_size == 2048 and public.public_numbers().e == 65537
    with pytest.raises(ValueError, match="not a valid rsa-3072"):
        SigningKey("rsa-3072", generate_private("rsa-2048"))


@pytest.mark.parametrize("hash_name", ["sha256", "sha384", "sha512"])
def test_pkcs1v15_is_the_deterministic_rfc8017_signature(hash_name: str) -> None:
    """PKCS#1 v1.5 signing is deterministic: the same bytes pyca makes with the same key."""
    private = serialization.load_der_private_key(generate_private("rsa-2048"), None)
    assert isinstance(private, rsa.RSAPrivateKey)
    der = private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    key = SigningKey("rsa-2048", der)
    algorithm = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(),
                 "sha512": hashes.SHA512()}[hash_name]
    ours = key.sign(message=MESSAGE, hash_name=hash_name, scheme="pkcs1v15")
    assert ours == private.sign(MESSAGE, padding.PKCS1v15(), algorithm)
    assert ours == key.sign(message=MESSAGE, hash_name=hash_name, scheme="pkcs1v15")
    digest = hashlib.new(hash_name, MESSAGE).digest()
    assert key.sign(digest=digest, hash_name=hash_name, scheme="pkcs1v15") == ours
    assert key.verify(ours, message=MESSAGE, hash_name=hash_name, scheme="pkcs1v15")
    assert not key.verify(ours, message=MESSAGE + b"!", hash_name=hash_name,
                          scheme="pkcs1v15")


def test_schemes_do_not_cross_verify(rsa2048: SigningKey) -> None:
    pss = rsa2048.sign(message=MESSAGE)
    pkcs1 = rsa2048.sign(message=MESSAGE, scheme="pkcs1v15")
    assert rsa2048.verify(pss, message=MESSAGE, scheme="pss")
    assert not rsa2048.verify(pss, message=MESSAGE, scheme="pkcs1v15")
    assert not rsa2048.verify(pkcs1, message=MESSAGE)
    assert verify_with_public_pem("rsa-2048", rsa2048.public_pem(), pkcs1, message=MESSAGE,
                                  scheme="pkcs1v15")
    _rsa_public(rsa2048).verify(pkcs1, MESSAGE, padding.PKCS1v15(), hashes.SHA256())


def test_pkcs1v15_works_on_every_rsa_size() -> None:
    key = SigningKey("rsa-3072", generate_private("rsa-3072"))
    signature = key.sign(message=MESSAGE, scheme="pkcs1v15")
    _rsa_public(key).verify(signature, MESSAGE, padding.PKCS1v15(), hashes.SHA256())


@pytest.mark.parametrize("alg", ["ecdsa-p256", "ed25519", "ml-dsa-44"])
def test_a_scheme_on_a_key_that_is_not_rsa_is_refused(alg: str) -> None:
    key = SigningKey(alg, generate_private(alg))
    for scheme in ("pkcs1v15", "pss"):
        with pytest.raises(InvalidSignatureInput, match="scheme applies to RSA keys only"):
            key.sign(message=MESSAGE, scheme=scheme)
        with pytest.raises(InvalidSignatureInput, match="scheme applies to RSA keys only"):
            key.verify(b"sig", message=MESSAGE, scheme=scheme)


def test_an_unknown_scheme_is_refused(rsa2048: SigningKey) -> None:
    with pytest.raises(InvalidSignatureInput, match="scheme must be one of pss, pkcs1v15"):
        rsa2048.sign(message=MESSAGE, scheme="raw")


def test_p521_signs_with_sha512_on_the_p521_curve(p521: SigningKey) -> None:
    public = serialization.load_pem_public_key(p521.public_pem().encode())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert isinstance(public.curve, ec.SECP521R1)
    signature = p521.sign(message=MESSAGE)
    public.verify(signature, MESSAGE, ec.ECDSA(hashes.SHA512()))
    assert p521.verify(signature, digest=hashlib.sha512(MESSAGE).digest())
    raw = der_to_raw("ecdsa-p521", signature)
    assert len(raw) == 132 and raw_to_der("ecdsa-p521", raw) == signature
