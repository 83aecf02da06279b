"""keyquorum.crypto: the only package that touches pyca/cryptography or libsodium.

Small verbs over well-kept libraries; no policy lives here (which key may do
what is the ``keys`` and ``service`` packages' business). One module per
concept:

- ``aead``     AES-256-GCM, ChaCha20-Poly1305, XChaCha20-Poly1305, AES-256-GCM-SIV
- ``signing``  Ed25519, ECDSA (P-256, P-384, secp256k1), RSA-PSS, ML-DSA
- ``mac``      HMAC-SHA-256/384/512
- ``kem``      ML-KEM-768/1024, DHKEM(X25519), X-Wing hybrid
- ``kdf``      HKDF-SHA256
- ``vss``      Feldman verifiable secret sharing + Schnorr proof of possession
- ``random``   the OS CSPRNG
- ``errors``   the error tree
"""

from __future__ import annotations

from keyquorum.crypto.errors import (
    CryptoError,
    InvalidCiphertext,
    InvalidSignatureInput,
    UnsupportedAlgorithm,
)

__all__ = ["CryptoError", "InvalidCiphertext", "InvalidSignatureInput", "UnsupportedAlgorithm"]
