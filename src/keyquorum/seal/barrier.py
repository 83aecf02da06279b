"""The barrier: every secret at rest is encrypted under a versioned keyring.

Each stored entry is AES-256-GCM under the keyring's active term, with the
entry's storage path as associated data, so a ciphertext moved to another
row (or another key's version) fails to authenticate. The keyring itself is
immutable: ``rotated()`` returns a new keyring; old terms stay to decrypt.

Layout of a barrier ciphertext: ``0x01 | term u32 BE | nonce 12 | ciphertext+tag``.
"""

from __future__ import annotations

import json
import struct
from base64 import b64decode, b64encode
from dataclasses import dataclass, field

from keyquorum.crypto import aead
from keyquorum.crypto.errors import InvalidCiphertext

_FORMAT = 1
_HEADER = struct.Struct(">BI")
_ALG = "aes-256-gcm"
KEYRING_AAD = b"keyquorum/barrier/keyring"
KEYRING_ENTRY = "barrier/keyring"  # the system entry holding the sealed keyring


class BarrierError(Exception):
    """Stored data failed to decrypt: tampering, a moved entry, or the wrong root key."""


@dataclass(frozen=True)
class Keyring:
    """Versioned barrier keys; the highest term encrypts, every term decrypts."""

    terms: dict[int, bytes] = field(repr=False)

    @classmethod
    def generate(cls) -> Keyring:
        return cls({1: aead.generate_key(_ALG)})

    @property
    def active_term(self) -> int:
        return max(self.terms)

    def rotated(self) -> Keyring:
        return Keyring({**self.terms, self.active_term + 1: aead.generate_key(_ALG)})

    def serialize(self) -> bytes:
        return json.dumps({str(t): b64encode(k).decode() for t, k in self.terms.items()}).encode()

    @classmethod
    def deserialize(cls, data: bytes) -> Keyring:
        raw = json.loads(data)
        return cls({int(t): b64decode(k) for t, k in raw.items()})


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

    def encrypt(self, path: str, plaintext: bytes) -> bytes:
        term = self._keyring.active_term
        header = _HEADER.pack(_FORMAT, term)
        nonce, body = self._ciphers[term].encrypt(plaintext, header + path.encode())
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


def seal_keyring(root_key: bytes, keyring: Keyring) -> bytes:
    """The keyring encrypted under the root key, for storage."""
    nonce, body = aead.AeadKey(_ALG, root_key).encrypt(keyring.serialize(), KEYRING_AAD)
    return nonce + body


def open_keyring(root_key: bytes, blob: bytes) -> Keyring:
    try:
        data = aead.AeadKey(_ALG, root_key).decrypt(blob[:12], blob[12:], KEYRING_AAD)
    except InvalidCiphertext as exc:
        raise BarrierError(
            "the barrier keyring failed to authenticate under this root key") from exc
    return Keyring.deserialize(data)
