"""The audit keys: an Ed25519 key that signs checkpoints and an HMAC key for context values.

Both live in the barrier (system entry ``audit/keys``, encrypted with AAD = that
path), so they exist only while the service is unsealed, and they are created
with the store (or on the first unseal of a store made before they existed).
The public half of the signing key is what an auditor keeps to check exports.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from keyquorum.crypto.mac import MacKey
from keyquorum.crypto.random import random_bytes
from keyquorum.crypto.signing import SigningKey, generate_private

AUDIT_KEYS_ENTRY = "audit/keys"
SIGNING_ALG = "ed25519"
_SEED_BYTES = 32
_HMAC_BYTES = 32
HASH_HEX_CHARS = 32  # 128-bit tags: plenty to search by, and they reveal nothing more


def key_id_of(public_pem: str) -> str:
    """A public key's id: SHA-256 of its PEM text, hex."""
    return hashlib.sha256(public_pem.encode("ascii")).hexdigest()


class AuditKeys:
    """The loaded audit keys. The repr names nothing secret."""

    __slots__ = ("_hmac", "_signer", "hash_value", "key_id", "public_pem")

    def __init__(self, material: bytes) -> None:
        if len(material) != _SEED_BYTES + _HMAC_BYTES:
            raise ValueError("audit key material has the wrong length")
        self._signer = SigningKey(SIGNING_ALG, material[:_SEED_BYTES])
        self._hmac = MacKey("hmac-sha256", material[_SEED_BYTES:])
        self.public_pem = self._signer.public_pem()
        self.key_id = key_id_of(self.public_pem)
        # Context names and values repeat (tenants, purposes): remember their tags. The
        # cache lives and dies with these keys (dropped on seal, like every secret).
        self.hash_value = lru_cache(maxsize=16384)(self._hash_value)

    def __repr__(self) -> str:
        return f"AuditKeys(key_id={self.key_id[:16]!r})"

    @staticmethod
    def generate_material() -> bytes:
        return generate_private(SIGNING_ALG) + random_bytes(_HMAC_BYTES)

    def sign(self, message: bytes) -> bytes:
        return self._signer.sign(message=message)

    def _hash_value(self, value: str) -> str:
        """The HMAC tag (hex, 128 bits) stored in place of a context name or value."""
        return self._hmac.mac(value.encode("utf-8")).hex()[:HASH_HEX_CHARS]

    def hash_context(self, context: dict[str, str]) -> dict[str, str]:
        return {self.hash_value(name): self.hash_value(value) for name, value in context.items()}
