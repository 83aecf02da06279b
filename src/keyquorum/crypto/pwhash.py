"""Argon2id (RFC 9106) over libsodium: a key from a passphrase someone remembers.

A passphrase has far less entropy than a key, so each guess must cost: memory
(so GPUs and ASICs gain little) and time. The parameters are stored next to
what they protect, so they can be raised for new seals without locking out old
ones. libsodium fixes the lanes at 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import nacl.pwhash.argon2id as _argon2id

__all__ = ["Argon2Params", "argon2id_key"]

SALT_SIZE = _argon2id.SALTBYTES  # 16
# RFC 9106 section 4, second recommended option (t=3, m=64 MiB): about 0.1 s a guess
# on a server core, and a memory bound an unauthenticated caller cannot multiply
# (the seal set runs one derivation at a time).
DEFAULT_OPSLIMIT = 3
DEFAULT_MEMLIMIT = 64 * 1024 * 1024
MIN_OPSLIMIT = _argon2id.OPSLIMIT_MIN
MIN_MEMLIMIT = _argon2id.MEMLIMIT_MIN
MAX_OPSLIMIT = 16
MAX_MEMLIMIT = 4 * 1024 * 1024 * 1024


@dataclass(frozen=True)
class Argon2Params:
    """The cost of one guess and the salt; public, stored with what they protect."""

    salt: bytes
    opslimit: int = DEFAULT_OPSLIMIT
    memlimit: int = DEFAULT_MEMLIMIT

    def __post_init__(self) -> None:
        if len(self.salt) != SALT_SIZE:
            raise ValueError(f"argon2id salts must be {SALT_SIZE} bytes")
        if not MIN_OPSLIMIT <= self.opslimit <= MAX_OPSLIMIT:
            raise ValueError(f"argon2id opslimit must be {MIN_OPSLIMIT}-{MAX_OPSLIMIT}")
        if not MIN_MEMLIMIT <= self.memlimit <= MAX_MEMLIMIT:
            raise ValueError(f"argon2id memlimit must be {MIN_MEMLIMIT}-{MAX_MEMLIMIT} bytes")


def argon2id_key(passphrase: bytes, params: Argon2Params, length: int = 32) -> bytes:
    """``length`` key bytes from ``passphrase`` under ``params`` (deterministic)."""
    return bytes(_argon2id.kdf(length, passphrase, params.salt, opslimit=params.opslimit,
                               memlimit=params.memlimit))
