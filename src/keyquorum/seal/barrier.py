"""The barrier: every secret at rest is encrypted under a versioned keyring.

Each stored entry is AES-256-GCM under the keyring's active term, with the
entry's storage path as associated data, so a ciphertext moved to another
row (or another key's version) fails to authenticate. The keyring itself is
immutable: ``rotated()`` returns a new keyring; old terms stay to decrypt.

Layout of a barrier ciphertext: ``0x01 | term u32 BE | nonce 12 | ciphertext+tag``.

The keyring's keys are bytearrays, wiped when the service seals
(``Barrier.wipe``); the keyring is unwrapped into a buffer and parsed from it, and
serialized into one, so no other copy of a key is made on the way (review F10).
Its stored form is JSON, ``{"<term>": "<base64 key>", ...}``, written and read here
without Python's json module (which would make str copies of every key), and the
base64 is coded here too: ``binascii`` works in a buffer on the C stack, where a
key (or its text) would stay behind on the thread that opened the barrier.
"""

from __future__ import annotations

import json
import re
import struct
from base64 import b64decode
from dataclasses import dataclass, field

from keyquorum.crypto import aead
from keyquorum.crypto.errors import InvalidCiphertext
from keyquorum.crypto.random import random_buffer
from keyquorum.crypto.wipe import wipe

_FORMAT = 1
_HEADER = struct.Struct(">BI")
_ALG = "aes-256-gcm"
KEYRING_AAD = b"keyquorum/barrier/keyring"
KEYRING_ENTRY = "barrier/keyring"  # the system entry holding the sealed keyring
_B64_KEY = 44  # characters of base64 for a 32-byte key
_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_VALUE = bytes(_B64.index(c) if c in _B64 else 0xFF for c in range(256))
_TERM = re.compile(rb'\s*"(\d{1,9})"\s*:\s*"([A-Za-z0-9+/]{43}=)"\s*(,|\}\s*$)')


class BarrierError(Exception):
    """Stored data failed to decrypt: tampering, a moved entry, or the wrong root key."""


@dataclass(frozen=True)
class Keyring:
    """Versioned barrier keys; the highest term encrypts, every term decrypts."""

    terms: dict[int, bytearray] = field(repr=False)

    @classmethod
    def generate(cls) -> Keyring:
        return cls({1: random_buffer(aead.key_size(_ALG))})

    @property
    def active_term(self) -> int:
        return max(self.terms)

    def rotated(self) -> Keyring:
        """A new keyring with one more term; it shares this one's key buffers."""
        return Keyring({**self.terms, self.active_term + 1: random_buffer(aead.key_size(_ALG))})

    def wipe(self) -> None:
        """Overwrite every key (sealing); the keyring is useless afterwards."""
        for key in self.terms.values():
            wipe(key)

    def serialize(self) -> bytearray:
        """The stored JSON form, in a buffer of its final size (the caller wipes it)."""
        entries = [(f'"{term}": "'.encode(), key) for term, key in sorted(self.terms.items())]
        size = 2 + sum(len(head) + _B64_KEY + 1 for head, _ in entries) + 2 * (len(entries) - 1)
        out = bytearray(size)
        at = 0
        for number, (head, key) in enumerate(entries):
            piece = (b", " if number else b"{") + head
            out[at : at + len(piece)] = piece
            at += len(piece)
            _b64_encode_into(out, at, key)
            at += _B64_KEY
            out[at] = ord('"')
            at += 1
        out[at] = ord("}")  # the last of the ``size`` bytes
        return out

    @classmethod
    def deserialize(cls, data: bytes | bytearray) -> Keyring:
        """Parse the stored form; each key is decoded into its own buffer."""
        terms: dict[int, bytearray] = {}
        at = data.find(b"{") + 1
        if at == 0 or data[:at].strip() != b"{":
            return cls._from_json(data)
        while True:
            match = _TERM.match(data, at)
            if match is None:
                return cls._from_json(data)
            start, _end = match.span(2)
            terms[int(match.group(1))] = _b64_decode_key(data, start)
            at = match.end()
            if match.group(3) != b",":
                break
        if at != len(data) or not terms:
            return cls._from_json(data)
        return cls(terms)

    @classmethod
    def _from_json(cls, data: bytes | bytearray) -> Keyring:
        """Any other JSON spelling of the same thing (never written by this module; its
        parse leaves copies that are not wiped)."""
        raw = json.loads(bytes(data))
        return cls({int(t): bytearray(b64decode(k)) for t, k in raw.items()})


class Barrier:
    """Encrypts and decrypts stored entries under a keyring; holds the only live copy."""

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring
        self._ciphers = {term: aead.AeadKey(_ALG, key) for term, key in keyring.terms.items()}

    def __repr__(self) -> str:
        return f"Barrier(terms={sorted(self._ciphers)})"

    @property
    def keyring(self) -> Keyring:
        return self._keyring

    def wipe(self) -> None:
        """Overwrite the keyring's keys (sealing). The ciphers keep working until this
        barrier is dropped (a request already holding it finishes); OpenSSL clears
        their key schedules when they are freed."""
        self._keyring.wipe()

    def encrypt(self, path: str, plaintext: bytes) -> bytes:
        term = self._keyring.active_term
        header = _HEADER.pack(_FORMAT, term)
        nonce, body = self._ciphers[term].encrypt(plaintext, header + path.encode())
        aead.scrub_stack(_ALG)  # the copy of the key the operation left on this stack
        return header + nonce + body

    def decrypt(self, path: str, blob: bytes) -> bytes:
        if len(blob) < _HEADER.size + 12 + 16:
            raise BarrierError(f"stored entry {path} is truncated")
        version, term = _HEADER.unpack_from(blob)
        cipher = self._ciphers.get(term)
        if version != _FORMAT or cipher is None:
            raise BarrierError(f"stored entry {path} names an unknown barrier term")
        header = blob[: _HEADER.size]
        nonce = blob[_HEADER.size : _HEADER.size + 12]
        try:
            return cipher.decrypt(nonce, blob[_HEADER.size + 12 :], header + path.encode())
        except InvalidCiphertext as exc:
            raise BarrierError(f"stored entry {path} failed to authenticate") from exc
        finally:
            aead.scrub_stack(_ALG)  # the copy of the key the operation left on this stack


def _b64_encode_into(out: bytearray, at: int, key: bytearray) -> None:
    """Write the 44 base64 characters of a 32-byte key into ``out`` at ``at``. Every
    intermediate is a number below 256 (CPython's shared small ints: no new object)."""
    for group in range(0, 30, 3):  # ten whole groups of three bytes
        a, b, c = key[group], key[group + 1], key[group + 2]
        at = _put4(out, at, a >> 2, ((a & 0x03) << 4) | (b >> 4),
                   ((b & 0x0F) << 2) | (c >> 6), c & 0x3F)
    a, b = key[30], key[31]  # the last two bytes: three characters and one "="
    out[at] = _B64[a >> 2]
    out[at + 1] = _B64[((a & 0x03) << 4) | (b >> 4)]
    out[at + 2] = _B64[(b & 0x0F) << 2]
    out[at + 3] = ord("=")


def _put4(out: bytearray, at: int, w: int, x: int, y: int, z: int) -> int:
    out[at], out[at + 1], out[at + 2], out[at + 3] = _B64[w], _B64[x], _B64[y], _B64[z]
    return at + 4


def _b64_decode_key(text: bytes | bytearray, at: int) -> bytearray:
    """The 32-byte key whose 44 base64 characters start at ``text[at]`` (the regex
    checked the alphabet and the one ``=``), decoded into a new bytearray."""
    key = bytearray(32)
    for group in range(11):
        first = at + 4 * group
        w, x = _B64_VALUE[text[first]], _B64_VALUE[text[first + 1]]
        y = _B64_VALUE[text[first + 2]]
        key[3 * group] = (w << 2) | (x >> 4)
        key[3 * group + 1] = ((x & 0x0F) << 4) | (y >> 2)
        if group < 10:  # the last group ends in "=": two bytes only
            z = _B64_VALUE[text[first + 3]]
            key[3 * group + 2] = ((y & 0x03) << 6) | z
    return key


def seal_keyring(root_key: bytes | bytearray, keyring: Keyring) -> bytes:
    """The keyring encrypted under the root key, for storage."""
    plain = keyring.serialize()
    try:
        nonce, body = aead.AeadKey(_ALG, root_key).encrypt(plain, KEYRING_AAD)
    finally:
        aead.scrub_stack(_ALG)
        wipe(plain)
    return nonce + body


def open_keyring(root_key: bytes | bytearray, blob: bytes) -> Keyring:
    try:
        data = aead.open_into(root_key, blob[:12], blob[12:], KEYRING_AAD)
    except InvalidCiphertext as exc:
        raise BarrierError(
            "the barrier keyring failed to authenticate under this root key") from exc
    try:
        return Keyring.deserialize(data)
    finally:
        wipe(data)
