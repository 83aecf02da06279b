"""A stand-in for the keyquorum server: enough of ``Client`` for the envelope, in process.

It wraps data keys with AES-256-GCM under named local keys and binds the key
name and the canonical context as associated data, so it refuses a wrong
context or a copy made for another key the way the server does, and it answers
with the SDK's own error classes. Tests that need the real server use the
``shared_server`` fixture instead; everything else is faster with this.
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Iterable, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keyquorum.client import (
    DataKey,
    DecryptResult,
    EncryptResult,
    ForbiddenError,
    InvalidCiphertextError,
    KeyStateError,
    NotFoundError,
)
from keyquorum.keys.ciphertext import canonical_context


class FakeKeyService:
    """Named AES keys; ``forbidden`` and ``disabled`` names refuse like the server would."""

    def __init__(self, names: Iterable[str] = ("app/primary", "app/dr")) -> None:
        self.keys = {name: AESGCM(os.urandom(32)) for name in names}
        self.forbidden: set[str] = set()
        self.disabled: set[str] = set()
        self.calls: dict[str, int] = {"datakey": 0, "encrypt": 0, "decrypt": 0}
        self._lock = threading.Lock()

    def _count(self, op: str) -> None:
        with self._lock:
            self.calls[op] += 1

    def _key(self, name: str) -> AESGCM:
        if name not in self.keys:
            raise NotFoundError(f"key {name} not found")
        if name in self.forbidden:
            raise ForbiddenError("not allowed")
        if name in self.disabled:
            raise KeyStateError("key is disabled")
        return self.keys[name]

    def _wrap(self, name: str, plaintext: bytes, context: Mapping[str, str] | None) -> str:
        nonce = os.urandom(12)
        body = self._key(name).encrypt(nonce, plaintext, name.encode() + canonical_context(context))
        return "kq1:" + base64.urlsafe_b64encode(nonce + body).decode().rstrip("=")

    def datakey(self, key: str, *, bits: int | None = None,
                context: Mapping[str, str] | None = None, plaintext: bool = True) -> DataKey:
        self._count("datakey")
        data_key = os.urandom((bits or 256) // 8)
        return DataKey(self._wrap(key, data_key, context), data_key if plaintext else None, 1)

    def encrypt(self, key: str, plaintext: bytes | str,
                context: Mapping[str, str] | None = None) -> EncryptResult:
        self._count("encrypt")
        data = plaintext.encode() if isinstance(plaintext, str) else plaintext
        return EncryptResult(self._wrap(key, data, context), 1)

    def decrypt(self, ciphertext: str, context: Mapping[str, str] | None = None, *,
                key: str | None = None, unsafe_allow_compromised: bool = False) -> DecryptResult:
        self._count("decrypt")
        assert key is not None, "the envelope always pins the key name"
        cipher = self._key(key)
        try:
            raw = base64.urlsafe_b64decode(ciphertext[4:] + "=" * (-len(ciphertext) % 4))
            plain = cipher.decrypt(raw[:12], raw[12:], key.encode() + canonical_context(context))
        except (InvalidTag, ValueError):
            raise InvalidCiphertextError("ciphertext is invalid") from None
        return DecryptResult(plain, key, 1)


class PatternSource:
    """``size`` bytes made on the fly: a random 1 MiB block, each copy stamped with its number.

    Nothing is stored, so a multi-GiB stream costs no disk and no memory; the
    stamp makes a reordered or repeated block visible. ``chunk`` caps each read
    (a pipe hands out short reads).
    """

    BLOCK = 1 << 20

    def __init__(self, size: int, *, seed: bytes = b"", chunk: int | None = None) -> None:
        self.size = size
        self.position = 0
        self.chunk = chunk
        self._base = (seed * (self.BLOCK // max(len(seed), 1) + 1))[:self.BLOCK] if seed \
            else os.urandom(self.BLOCK)
        self._number = -1
        self._block = bytearray(self._base)

    def expected(self, number: int) -> bytearray:
        """Block ``number`` of the stream (reused buffer)."""
        if number != self._number:
            self._block[:] = self._base
            self._block[:8] = number.to_bytes(8, "big")
            self._number = number
        return self._block

    def readinto(self, view: memoryview | bytearray) -> int:
        view = memoryview(view)
        want = min(len(view), self.size - self.position)
        if self.chunk is not None:
            want = min(want, self.chunk)
        done = 0
        while done < want:
            number, offset = divmod(self.position, self.BLOCK)
            n = min(want - done, self.BLOCK - offset)
            view[done:done + n] = self.expected(number)[offset:offset + n]
            done += n
            self.position += n
        return done

    def read(self, n: int = -1) -> bytes:
        buf = bytearray(self.size - self.position if n < 0 else n)
        return bytes(buf[:self.readinto(buf)])


class VerifyingSink:
    """A sink that checks every byte against a ``PatternSource`` as it arrives, and keeps none."""

    def __init__(self, pattern: PatternSource) -> None:
        self.pattern = PatternSource(pattern.size)
        self.pattern._base = pattern._base
        self.pattern._block = bytearray(pattern._base)
        self.position = 0
        self.mismatch: int | None = None

    def write(self, data: memoryview | bytes) -> int:
        view = memoryview(data)
        done = 0
        while done < len(view):
            number, offset = divmod(self.position, PatternSource.BLOCK)
            n = min(len(view) - done, PatternSource.BLOCK - offset)
            # bytes == bytes is one memcmp; memoryview == compares item by item (40x slower).
            if self.mismatch is None and view[done:done + n].tobytes() != \
                    self.pattern.expected(number)[offset:offset + n]:
                self.mismatch = self.position
            done += n
            self.position += n
        return done
