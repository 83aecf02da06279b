"""Private key material in the spellings other products export it in.

WARNING: every function here returns secret key material. Callers are the export
paths only, which check that the key is exportable, the caller's ``export``
permission and dual control first.

Stored shapes (``signing.generate_private``): the 32-byte seed for Ed25519 and
ML-DSA, PKCS#8 DER for ECDSA and RSA; AEAD and HMAC keys are raw bytes. Vault's
transit export gives Ed25519 as the 64-byte private key (seed || public key),
ECDSA as SEC 1 PEM (``EC PRIVATE KEY``) and RSA as PKCS#1 PEM (``RSA PRIVATE KEY``).
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from keyquorum.crypto.errors import UnsupportedAlgorithm


def vault_private_key(alg: str, material: bytes) -> str | bytes:
    """Vault's export of a signing key: PEM text (ECDSA, RSA) or raw bytes (Ed25519)."""
    if alg == "ed25519":
        private = ed25519.Ed25519PrivateKey.from_private_bytes(material)
        public = private.public_key().public_bytes_raw()
        return material + public
    if alg.startswith("ml-dsa-"):
        return material  # the seed: what FIPS 204 keys are exchanged as
    loaded = serialization.load_der_private_key(material, password=None)
    if isinstance(loaded, ec.EllipticCurvePrivateKey):
        return loaded.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption()).decode("ascii")
    if isinstance(loaded, rsa.RSAPrivateKey):
        return loaded.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption()).decode("ascii")
    raise UnsupportedAlgorithm("export", alg, ("ed25519", "ecdsa-*", "rsa-*", "ml-dsa-*"))
