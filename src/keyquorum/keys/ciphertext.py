"""The ``kq1:`` ciphertext format: self-describing, versioned, authenticated.

Binary layout (docs/FORMAT.md has the byte-by-byte specification)::

    magic "KQ" (2) | version u8 = 1 | algorithm id u8 | key id (16, UUID bytes)
    | key version u32 BE | nonce (12 or 24, by algorithm) | AEAD ciphertext + tag

shown as ``"kq1:" + base64url(binary)`` without padding. The AEAD's associated
data is the whole header (nonce included) followed by the canonical encoding of
the caller's encryption context, so changing any header byte, or decrypting
under a different context, fails authentication. Decrypting needs no key name:
the header names the key id and version.

Every parse failure raises the same ``InvalidCiphertext`` as a failed tag
check: the caller learns only "this is not a valid ciphertext for you".
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Mapping
from functools import lru_cache
from typing import NamedTuple

from keyquorum import b64
from keyquorum.crypto.aead import AeadKey, nonce_size
from keyquorum.crypto.errors import InvalidCiphertext
from keyquorum.crypto.random import random_nonce

__all__ = [
    "ALGORITHM_IDS",
    "FORMAT_VERSION",
    "MAGIC",
    "PREFIX",
    "CiphertextHeader",
    "canonical_context",
    "encode_ciphertext",
    "open_with",
    "parse_ciphertext",
    "seal_with",
]

PREFIX = "kq1:"
MAGIC = b"KQ"
FORMAT_VERSION = 1
TAG_SIZE = 16

ALGORITHM_IDS: dict[str, int] = {
    "aes-256-gcm": 1,
    "chacha20-poly1305": 2,
    "xchacha20-poly1305": 3,
    "aes-256-gcm-siv": 4,
    "aes-128-gcm": 5,
}
_ALGORITHMS_BY_ID = {v: k for k, v in ALGORITHM_IDS.items()}

# magic, version, algorithm id, key id, key version; the nonce follows.
_FIXED = struct.Struct(">2sBB16sI")
_MAX_U16 = 0xFFFF
_MAX_U32 = 0xFFFFFFFF


class CiphertextHeader(NamedTuple):
    """Everything before the AEAD body; all of it is authenticated.

    A named tuple rather than a frozen dataclass: one is made for every decrypted
    item, and a frozen dataclass's ``__init__`` (five ``object.__setattr__``) took
    0.85 µs of the event loop's time where a tuple takes a fraction of it."""

    version: int
    algorithm: str
    key_id: uuid.UUID
    key_version: int
    nonce: bytes

    def encode(self) -> bytes:
        """The header's bytes, exactly as they are authenticated and transmitted."""
        if self.version != FORMAT_VERSION:
            raise ValueError(f"format version must be {FORMAT_VERSION}")
        if self.algorithm not in ALGORITHM_IDS:
            raise ValueError(f"algorithm must be one of {', '.join(ALGORITHM_IDS)}")
        if not isinstance(self.key_id, uuid.UUID):
            raise ValueError("key_id must be a uuid.UUID")
        if not isinstance(self.key_version, int) or not 0 <= self.key_version <= _MAX_U32:
            raise ValueError("key_version must fit in an unsigned 32-bit integer")
        if len(self.nonce) != nonce_size(self.algorithm):
            raise ValueError(f"{self.algorithm} nonces must be {nonce_size(self.algorithm)} bytes")
        fixed = _FIXED.pack(
            MAGIC, self.version, ALGORITHM_IDS[self.algorithm], self.key_id.bytes, self.key_version
        )
        return fixed + bytes(self.nonce)


def canonical_context(context: Mapping[str, str] | None) -> bytes:
    """One exact byte string per context map, independent of insertion order.

    u16 count, then for each entry in order of its UTF-8 key bytes: u16 key
    length, key, u32 value length, value. Lengths make it unambiguous (no
    separator can be forged inside a value); ``None`` and ``{}`` are the same.
    """
    if context is None:
        return b"\x00\x00"
    if not isinstance(context, Mapping):
        raise ValueError("encryption context must be a mapping of strings to strings")
    entries: list[tuple[bytes, bytes]] = []
    for key, value in context.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError("encryption context keys and values must be strings")
        try:
            entries.append((key.encode("utf-8"), value.encode("utf-8")))
        except UnicodeEncodeError:
            raise ValueError("encryption context must be valid Unicode text") from None
    if len(entries) > _MAX_U16:
        raise ValueError(f"encryption context may hold at most {_MAX_U16} entries")
    entries.sort()
    parts = [struct.pack(">H", len(entries))]
    for key_bytes, value_bytes in entries:
        if len(key_bytes) > _MAX_U16:
            raise ValueError(f"encryption context keys may be at most {_MAX_U16} bytes")
        if len(value_bytes) > _MAX_U32:
            raise ValueError("encryption context values may be at most 2^32-1 bytes")
        parts.append(struct.pack(">H", len(key_bytes)))
        parts.append(key_bytes)
        parts.append(struct.pack(">I", len(value_bytes)))
        parts.append(value_bytes)
    return b"".join(parts)


def encode_ciphertext(header: CiphertextHeader, body: bytes) -> str:
    """The text form: ``kq1:`` + unpadded base64url of header || body."""
    return _text(header.encode() + bytes(body))


def _text(raw: bytes) -> str:
    return PREFIX + b64.encode_url(raw).rstrip(b"=").decode("ascii")


def parse_ciphertext(text: str) -> tuple[CiphertextHeader, bytes, bytes]:
    """Parse the text form into ``(header, header_bytes, body)``; nothing is decrypted."""
    raw = _decode_text(text)
    if len(raw) < _FIXED.size:
        raise InvalidCiphertext()
    magic, version, algorithm_id, key_id, key_version = _FIXED.unpack_from(raw)
    algorithm = _ALGORITHMS_BY_ID.get(algorithm_id)
    if magic != MAGIC or version != FORMAT_VERSION or algorithm is None:
        raise InvalidCiphertext()
    header_size = _FIXED.size + nonce_size(algorithm)
    if len(raw) < header_size + TAG_SIZE:
        raise InvalidCiphertext()
    header = CiphertextHeader(version, algorithm, _key_uuid(key_id), key_version,
                              raw[_FIXED.size : header_size])
    return header, raw[:header_size], raw[header_size:]


@lru_cache(maxsize=4096)
def _key_uuid(key_id: bytes) -> uuid.UUID:
    """The key id's UUID, made once per key: ``uuid.UUID(bytes=...)`` costs 1.4 µs, and
    a busy service decrypts under few keys. (Bounded: a caller sending random key ids
    only evicts entries, and is refused for the unknown key anyway.)"""
    return uuid.UUID(bytes=key_id)


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# How many low bits of the last character are padding for each remainder of len % 4.
_UNUSED_BITS = {2: 4, 3: 2}


def _decode_text(text: str) -> bytes:
    """Strict base64url: right prefix, right alphabet, no padding, canonical bits."""
    if not isinstance(text, str) or not text.startswith(PREFIX):
        raise InvalidCiphertext()
    encoded = text[len(PREFIX) :]
    remainder = len(encoded) % 4
    if remainder == 1 or "+" in encoded or "/" in encoded or "=" in encoded:
        raise InvalidCiphertext()
    try:
        # "+", "/" and "=" were refused above; the decoder refuses anything else outside
        # the URL alphabet.
        raw = b64.decode_url(encoded.encode("ascii") + b"=" * (-len(encoded) % 4))
    except ValueError:  # binascii.Error and UnicodeEncodeError are ValueErrors
        raise InvalidCiphertext() from None
    # Refuse non-zero trailing bits, so each ciphertext has exactly one text form.
    if remainder and _ALPHABET.index(encoded[-1]) & ((1 << _UNUSED_BITS[remainder]) - 1):
        raise InvalidCiphertext()
    return raw


@lru_cache(maxsize=4096)
def _fixed_header(algorithm: str, key_id: uuid.UUID, key_version: int) -> bytes:
    """The header before the nonce, validated and packed once per key version."""
    probe = CiphertextHeader(FORMAT_VERSION, algorithm, key_id, key_version,
                             bytes(nonce_size(algorithm)))
    return probe.encode()[: _FIXED.size]


def seal_with(
    aead: AeadKey,
    key_id: uuid.UUID,
    key_version: int,
    plaintext: bytes,
    context: Mapping[str, str] | None,
    *,
    nonce: bytes | None = None,
) -> str:
    """Encrypt ``plaintext`` under ``aead`` and return the ``kq1:`` text.

    ``nonce`` is for known-answer tests only; leave it out to get a fresh
    random nonce (a repeated nonce under one key breaks the AEAD).
    """
    if nonce is None:
        nonce = random_nonce(nonce_size(aead.alg))
    elif len(nonce) != nonce_size(aead.alg):
        raise ValueError(f"{aead.alg} nonces must be {nonce_size(aead.alg)} bytes")
    header_bytes = _fixed_header(aead.alg, key_id, key_version) + bytes(nonce)
    # AAD = header (nonce included) || canonical context: binds key id, version,
    # algorithm and the caller's context to this ciphertext.
    _, body = aead.encrypt(plaintext, header_bytes + canonical_context(context), nonce)
    return _text(header_bytes + body)


def open_with(
    aead: AeadKey,
    header: CiphertextHeader,
    header_bytes: bytes,
    body: bytes,
    context: Mapping[str, str] | None,
) -> bytes:
    """Authenticate and decrypt a parsed ciphertext, or raise ``InvalidCiphertext``."""
    if header.algorithm != aead.alg:
        raise InvalidCiphertext()
    return aead.decrypt(header.nonce, body, header_bytes + canonical_context(context))
