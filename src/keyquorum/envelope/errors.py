"""Exceptions raised by ``keyquorum.envelope``, each with a stable ``code``.

    KeyquorumClientError                 (keyquorum.client.errors: every SDK error)
    └── EnvelopeError
        ├── InvalidEnvelopeError     invalid_ciphertext   parse or authentication failure,
        │                                                 one vague message (also
        │                                                 keyquorum.crypto InvalidCiphertext)
        ├── NoUsableKeyError         no_usable_key        none of the file's wrapped data
        │                                                 keys could be opened here
        └── EnvelopeUsageError       invalid_argument     a caller mistake (also ValueError)

``InvalidEnvelopeError`` is raised for a truncated, extended, reordered,
spliced or edited stream, a wrong encryption context and a data key that does
not match the key commitment, always with the same message: saying which check
failed would tell an attacker which of their edits got how far. Caller mistakes
(a segment size out of range, no key named, a bad byte range) say the rule.
Server answers (``KeyquorumAPIError`` subclasses such as ``SealedError``) pass
through unchanged, except that an unopenable key is tried next (see
``NoUsableKeyError``). No message carries key material or plaintext.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from keyquorum.client.errors import KeyquorumAPIError, KeyquorumClientError
from keyquorum.crypto.errors import InvalidCiphertext

__all__ = ["EnvelopeError", "EnvelopeUsageError", "InvalidEnvelopeError", "NoUsableKeyError"]

_VAGUE = "encrypted stream is invalid, incomplete or does not match the context"


class EnvelopeError(KeyquorumClientError):
    """Base of every error raised by ``keyquorum.envelope`` itself."""

    code: ClassVar[str] = "envelope_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidEnvelopeError(EnvelopeError, InvalidCiphertext):
    """The stream could not be parsed or authenticated; never says which check failed."""

    code: ClassVar[str] = "invalid_ciphertext"

    def __init__(self, message: str = _VAGUE) -> None:
        super().__init__(message)


class NoUsableKeyError(EnvelopeError):
    """Every wrapped data key in the header was refused; ``errors`` holds each answer.

    ``errors`` pairs each key name with the server's error for it (``not_found``,
    ``forbidden``, ``key_state``, ``invalid_ciphertext``), in header order.
    """

    code: ClassVar[str] = "no_usable_key"

    def __init__(self, errors: Sequence[tuple[str, KeyquorumAPIError]]) -> None:
        self.errors = list(errors)
        reasons = "; ".join(f"{name}: {error.code}" for name, error in self.errors)
        super().__init__(f"none of the stream's {len(self.errors)} wrapped data keys could be "
                         f"opened ({reasons})")


class EnvelopeUsageError(EnvelopeError, ValueError):
    """The caller passed something the envelope does not accept; the message states the rule."""

    code: ClassVar[str] = "invalid_argument"
