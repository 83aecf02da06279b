"""Vault's BYOK key wrapping: RSA-OAEP of an ephemeral AES key, then AES-KWP of the key.

The import ciphertext is ``RSA-OAEP(wrapping public key, ephemeral AES-256 key) ||
AES-KWP(ephemeral key, target key)`` (RFC 8017, RFC 5649), the same scheme as
PKCS#11's CKM_RSA_AES_KEY_WRAP. Target keys arrive as raw bytes (symmetric) or
PKCS#8 DER (asymmetric); ``storage_shape`` turns them into keyquorum's stored
shape (``signing.generate_private``): the 32-byte seed for Ed25519 and ML-DSA,
PKCS#8 DER for ECDSA and RSA.

WARNING: ``unwrap`` returns secret key material.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap_with_padding

from keyquorum.crypto.errors import InvalidCiphertext, InvalidSignatureInput

WRAPPING_BITS = 4096
HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA1": hashes.SHA1, "SHA224": hashes.SHA224, "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384, "SHA512": hashes.SHA512}
_SEEDED = ("ed25519", "ml-dsa-44", "ml-dsa-65", "ml-dsa-87")


def generate_wrapping_key() -> bytes:
    """A fresh RSA-4096 private key (PKCS#8 DER), from the OS CSPRNG."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=WRAPPING_BITS)
    return private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())


def _load(private_der: bytes) -> rsa.RSAPrivateKey:
    private = serialization.load_der_private_key(private_der, password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    return private


def public_pem(private_der: bytes) -> str:
    return _load(private_der).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def unwrap(private_der: bytes, blob: bytes, hash_name: str) -> bytes:
    """The target key inside ``blob``; ``InvalidCiphertext`` for any failure (which check
    failed is not said)."""
    if hash_name not in HASHES:
        raise InvalidSignatureInput(f"hash_function must be one of {', '.join(HASHES)}")
    private = _load(private_der)
    size = private.key_size // 8
    digest = HASHES[hash_name]()
    oaep = padding.OAEP(mgf=padding.MGF1(digest), algorithm=digest, label=None)
    try:
        ephemeral = private.decrypt(blob[:size], oaep)
        return aes_key_unwrap_with_padding(ephemeral, blob[size:])
    except (ValueError, InvalidUnwrap):
        raise InvalidCiphertext() from None


def storage_shape(alg: str, material: bytes, asymmetric: bool) -> bytes:
    """An imported key in keyquorum's stored shape (checked by loading it afterwards)."""
    if not asymmetric:
        return material
    if alg in _SEEDED and len(material) == 32:
        return material  # already the seed
    try:
        private = serialization.load_der_private_key(material, password=None)
    except (ValueError, TypeError):
        raise InvalidSignatureInput("an imported asymmetric key must be PKCS#8 DER") from None
    if alg == "ed25519":
        if not isinstance(private, ed25519.Ed25519PrivateKey):
            raise InvalidSignatureInput("the imported key is not an Ed25519 key")
        return private.private_bytes_raw()
    return private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
