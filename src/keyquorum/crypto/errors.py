"""Errors raised by ``keyquorum.crypto``.

Two kinds, kept apart on purpose (the Fernet habit):

    CryptoError
    ├── InvalidCiphertext       every parse or authentication failure, one vague message
    ├── InvalidSignatureInput   a caller mistake in a sign/verify call (also ValueError)
    └── UnsupportedAlgorithm    an algorithm name this package does not offer (also ValueError)

``InvalidCiphertext`` never says which check failed: telling an attacker "bad tag"
versus "bad length" versus "bad padding" is an oracle. Caller mistakes get a
precise message that states the rule. No message ever carries secret bytes.
"""

from __future__ import annotations

__all__ = ["CryptoError", "InvalidCiphertext", "InvalidSignatureInput", "UnsupportedAlgorithm"]


_VAGUE = "ciphertext is invalid or does not match the context"


class CryptoError(Exception):
    """Base of every error raised by ``keyquorum.crypto``."""


class InvalidCiphertext(CryptoError):
    """The ciphertext (or encapsulation) could not be parsed or authenticated."""

    def __init__(self, message: str = _VAGUE) -> None:
        super().__init__(message)


class InvalidSignatureInput(CryptoError, ValueError):
    """The caller asked for something the signature scheme does not do."""


class UnsupportedAlgorithm(CryptoError, ValueError):
    """The algorithm name is not one this package offers."""

    def __init__(self, kind: str, alg: object, allowed: tuple[str, ...]) -> None:
        # Echo the name only when it looks like a name: a caller who passed key
        # bytes by mistake must not see them in a log line.
        shown = repr(alg) if isinstance(alg, str) and len(alg) <= 40 else type(alg).__name__
        expected = ", ".join(allowed)
        super().__init__(f"unsupported {kind} algorithm {shown}; expected one of {expected}")
