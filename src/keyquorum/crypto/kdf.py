"""HKDF-SHA256 (RFC 5869) over pyca/cryptography.

Keys derived for different purposes must differ even from the same input key
material, so ``info`` is mandatory and keyword-only: every caller names its use.
Extract and Expand are also offered separately because RFC 9180's labeled HKDF
(used by the X25519 KEM) is built from the two halves.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

__all__ = ["hkdf_expand", "hkdf_extract", "hkdf_sha256", "hkdf_sha256_into"]

_MAX_LENGTH = 255 * 32


def hkdf_sha256(ikm: bytes | bytearray, *, info: bytes, length: int = 32,
                salt: bytes | None = None) -> bytes:
    """Derive ``length`` bytes from ``ikm`` bound to the purpose string ``info``."""
    _check_length(length)
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def hkdf_sha256_into(ikm: bytes | bytearray, *, info: bytes, length: int = 32,
                     salt: bytes | None = None) -> bytearray:
    """``hkdf_sha256`` written into a new ``bytearray`` the caller wipes (``crypto.wipe``):
    for keys that must not outlive their use, the output never exists as ``bytes``."""
    _check_length(length)
    out = bytearray(length)
    HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive_into(ikm, out)
    return out


def hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract(salt, ikm) with SHA-256: a 32-byte pseudorandom key."""
    return HKDF.extract(hashes.SHA256(), salt, ikm)


def hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Expand(prk, info, length) with SHA-256."""
    _check_length(length)
    return HKDFExpand(algorithm=hashes.SHA256(), length=length, info=info).derive(prk)


def _check_length(length: int) -> None:
    if not 1 <= length <= _MAX_LENGTH:
        raise ValueError(f"length must be between 1 and {_MAX_LENGTH} bytes")
