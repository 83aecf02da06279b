"""Getting a data key from keyquorum, and getting it back.

Encrypting asks the server for one fresh data key wrapped under the first key
(``POST /v1/keys/{name}/datakey``), then wraps that same data key under every
further key with a plain ``encrypt`` (disaster-recovery copies: the stream
opens with any one of them). Every wrap binds the caller's encryption context,
so the server refuses to unwrap under another context.

Decrypting tries the wrapped copies in header order and uses the first one
the server opens, pinning the key name (``decrypt(..., key=name)``) so a header
cannot make one key's ciphertext pass for another's. A key that is missing,
forbidden to this caller, in a state that refuses decryption, or whose copy
does not open, is skipped; anything else (sealed server, bad token, no
connection) is raised at once, because trying the next key would not help.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from keyquorum.client._crypto_models import DataKey, DecryptResult, EncryptResult
from keyquorum.client.errors import (
    ForbiddenError,
    InvalidCiphertextError,
    KeyquorumAPIError,
    KeyStateError,
    NotFoundError,
)
from keyquorum.crypto.stream import DATA_KEY_SIZE

from ._format import WrappedKey
from .errors import EnvelopeError, EnvelopeUsageError, InvalidEnvelopeError, NoUsableKeyError

__all__ = ["KeyService", "NewDataKey", "check_key_names", "new_data_key", "open_data_key"]

# Answers that mean "this copy is not for you": try the next one.
_SKIPPABLE = (NotFoundError, ForbiddenError, KeyStateError, InvalidCiphertextError)


class KeyService(Protocol):
    """What the envelope needs from a keyquorum client (``keyquorum.client.Client`` has it)."""

    def datakey(self, key: str, *, bits: int | None = None,
                context: Mapping[str, str] | None = None, plaintext: bool = True) -> DataKey: ...

    def encrypt(self, key: str, plaintext: bytes | str,
                context: Mapping[str, str] | None = None) -> EncryptResult: ...

    def decrypt(self, ciphertext: str, context: Mapping[str, str] | None = None, *,
                key: str | None = None, unsafe_allow_compromised: bool = False
                ) -> DecryptResult: ...


class NewDataKey:
    """A plaintext data key (in a wipeable ``bytearray``) and its wrapped copies."""

    __slots__ = ("plaintext", "wrapped")

    def __init__(self, plaintext: bytes, wrapped: Sequence[WrappedKey]) -> None:
        self.plaintext = bytearray(plaintext)
        self.wrapped = tuple(wrapped)

    def __repr__(self) -> str:
        return f"NewDataKey(keys={[w.key for w in self.wrapped]!r})"  # never the key

    def wipe(self) -> None:
        """Overwrite the plaintext key. Best effort: Python may hold other copies."""
        self.plaintext[:] = bytes(len(self.plaintext))


def check_key_names(keys: Sequence[str]) -> tuple[str, ...]:
    if isinstance(keys, str) or not isinstance(keys, Sequence) or not keys:
        raise EnvelopeUsageError("keys must be a non-empty list of key names")
    names = tuple(keys)
    if not all(isinstance(k, str) and k for k in names):
        raise EnvelopeUsageError("keys must be non-empty strings")
    if len(set(names)) != len(names):
        raise EnvelopeUsageError("keys must not repeat a key name")
    return names


def new_data_key(service: KeyService, keys: Sequence[str],
                 context: Mapping[str, str] | None) -> NewDataKey:
    """A fresh 256-bit data key wrapped under every key in ``keys`` (first: ``datakey``)."""
    names = check_key_names(keys)
    primary = service.datakey(names[0], bits=DATA_KEY_SIZE * 8, context=context)
    if primary.plaintext is None or len(primary.plaintext) != DATA_KEY_SIZE:
        raise EnvelopeError("the server answered without a 256-bit data key")
    wrapped = [WrappedKey(names[0], primary.ciphertext)]
    for name in names[1:]:
        wrapped.append(WrappedKey(name, service.encrypt(name, primary.plaintext,
                                                        context).ciphertext))
    return NewDataKey(primary.plaintext, wrapped)


def open_data_key(service: KeyService, wrapped: Sequence[WrappedKey],
                  context: Mapping[str, str] | None) -> tuple[bytearray, str]:
    """The plaintext data key from the first copy the server opens, and that key's name."""
    refused: list[tuple[str, KeyquorumAPIError]] = []
    for copy in wrapped:
        try:
            result = service.decrypt(copy.ciphertext, context, key=copy.key)
        except _SKIPPABLE as exc:
            refused.append((copy.key, exc))
            continue
        if len(result.plaintext) != DATA_KEY_SIZE:
            raise InvalidEnvelopeError()
        return bytearray(result.plaintext), copy.key
    raise NoUsableKeyError(refused)
