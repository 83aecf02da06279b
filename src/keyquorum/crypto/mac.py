"""HMAC over SHA-2 for the ``mac`` key purpose.

Tags are checked with ``hmac.compare_digest`` so the time taken does not reveal
how many leading bytes of a forged tag were right.
"""

from __future__ import annotations

import hmac

from keyquorum.crypto.errors import UnsupportedAlgorithm
from keyquorum.crypto.random import random_bytes

__all__ = ["MAC_ALGORITHMS", "MacKey", "generate_key"]

_HASHES: dict[str, tuple[str, int]] = {
    "hmac-sha224": ("sha224", 28),  # AWS KMS HMAC_224 compatibility
    "hmac-sha256": ("sha256", 32),
    "hmac-sha384": ("sha384", 48),
    "hmac-sha512": ("sha512", 64),
}
MAC_ALGORITHMS: tuple[str, ...] = tuple(_HASHES)

# RFC 2104 §3: keys shorter than the hash output weaken the MAC; 16 bytes is the
# floor we accept for imported keys, generated keys are the full digest size.
MIN_KEY_SIZE = 16


def _spec(alg: str) -> tuple[str, int]:
    try:
        return _HASHES[alg]
    except (KeyError, TypeError):
        raise UnsupportedAlgorithm("mac", alg, MAC_ALGORITHMS) from None


def generate_key(alg: str) -> bytes:
    """A fresh key as long as the hash output (the RFC 2104 recommendation)."""
    return random_bytes(_spec(alg)[1])


class MacKey:
    """One HMAC key. The repr names the algorithm only."""

    __slots__ = ("_digest", "_key", "alg")

    def __init__(self, alg: str, key: bytes) -> None:
        self._digest = _spec(alg)[0]
        if not isinstance(key, bytes | bytearray) or len(key) < MIN_KEY_SIZE:
            raise ValueError(f"{alg} keys must be at least {MIN_KEY_SIZE} bytes")
        self.alg = alg
        self._key = bytes(key)

    def __repr__(self) -> str:
        return f"MacKey(alg={self.alg!r})"

    def mac(self, message: bytes) -> bytes:
        """The tag of ``message``."""
        return hmac.digest(self._key, message, self._digest)

    def verify(self, message: bytes, tag: bytes) -> bool:
        """True if ``tag`` is the tag of ``message``; compared in constant time."""
        return hmac.compare_digest(self.mac(message), tag)
