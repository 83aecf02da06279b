"""The stream header and the segment layout, byte by byte (docs/FORMAT.md section 5).

::

    magic "KQST" (4) | version u8 = 1 | algorithm u8 = 1 | segment size u32
    | context length u32 | canonical context | key count u8
    | per key: name length u8, name, wrapped length u16, wrapped ("kq1:..." text)
    | salt (32) | nonce prefix (7) | key commitment (32)
    then segments: ciphertext || 16-byte tag, each ``segment size`` bytes of
    plaintext except the last, which holds 0 .. ``segment size`` bytes.

The header is in the clear (key names and the context are not secret, as in
the ``kq1:`` format) and is authenticated three ways: its digest goes into the
key derivation (an edited header derives another key and fails the commitment
check before any segment), into every segment's associated data, and the
wrapped keys are checked by the server when they are opened.

Every parse failure is the one ``InvalidEnvelopeError``. Readers bound every
length before they allocate, so a hostile header cannot make them read or hold
more than ``MAX_HEADER_SIZE`` bytes, or a segment over ``MAX_SEGMENT_SIZE``.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from keyquorum.crypto.stream import (
    COMMITMENT_SIZE,
    MAX_SEGMENTS,
    NONCE_PREFIX_SIZE,
    SALT_SIZE,
    TAG_SIZE,
)
from keyquorum.keys.ciphertext import canonical_context

from .errors import EnvelopeUsageError, InvalidEnvelopeError

__all__ = [
    "ALGORITHM_ID",
    "DEFAULT_SEGMENT_SIZE",
    "FORMAT_VERSION",
    "MAGIC",
    "MAX_SEGMENT_SIZE",
    "MIN_SEGMENT_SIZE",
    "EnvelopeHeader",
    "Layout",
    "WrappedKey",
    "check_segment_size",
    "decode_context",
    "encode_context",
    "read_header_from",
]

MAGIC = b"KQST"
FORMAT_VERSION = 1
ALGORITHM_ID = 1  # AES-256-GCM segments, HKDF-SHA256 keys, STREAM nonces, key commitment
ALGORITHM_NAME = "aes-256-gcm-hkdf-sha256-stream"

DEFAULT_SEGMENT_SIZE = 1 << 20
MIN_SEGMENT_SIZE = 16
# Bounds what a reader must hold for one segment: a header cannot demand 4 GiB.
MAX_SEGMENT_SIZE = 64 << 20
MAX_CONTEXT_SIZE = 65536
MAX_KEYS = 16
MAX_KEY_NAME = 255
MAX_WRAPPED = 4096

_FIXED = struct.Struct(">4sBBII")  # magic, version, algorithm, segment size, context length
_TRAILER = SALT_SIZE + NONCE_PREFIX_SIZE + COMMITMENT_SIZE
MAX_HEADER_SIZE = (_FIXED.size + MAX_CONTEXT_SIZE + 1
                   + MAX_KEYS * (1 + MAX_KEY_NAME + 2 + MAX_WRAPPED) + _TRAILER)


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes | None: ...


@dataclass(frozen=True)
class WrappedKey:
    """One copy of the data key, wrapped by the keyquorum key ``key`` (a ``kq1:`` text)."""

    key: str
    ciphertext: str = field(repr=False)


@dataclass(frozen=True)
class EnvelopeHeader:
    """Everything before the first segment. ``context`` is the canonical encoding."""

    segment_size: int
    context: bytes
    wrapped_keys: tuple[WrappedKey, ...]
    salt: bytes = field(repr=False)
    nonce_prefix: bytes = field(repr=False)
    commitment: bytes = field(default=b"", repr=False)

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(w.key for w in self.wrapped_keys)

    def context_map(self) -> dict[str, str]:
        return decode_context(self.context)

    def encode_prefix(self) -> bytes:
        """The header without its commitment: what the commitment is derived from."""
        check_segment_size(self.segment_size)
        if len(self.context) > MAX_CONTEXT_SIZE:
            raise EnvelopeUsageError(
                f"the encryption context may be at most {MAX_CONTEXT_SIZE} bytes encoded")
        if not 1 <= len(self.wrapped_keys) <= MAX_KEYS:
            raise EnvelopeUsageError(f"a stream names 1 to {MAX_KEYS} keys")
        if len(self.salt) != SALT_SIZE or len(self.nonce_prefix) != NONCE_PREFIX_SIZE:
            raise EnvelopeUsageError(
                f"salt must be {SALT_SIZE} bytes and nonce prefix {NONCE_PREFIX_SIZE} bytes")
        parts = [_FIXED.pack(MAGIC, FORMAT_VERSION, ALGORITHM_ID, self.segment_size,
                             len(self.context)), self.context, bytes([len(self.wrapped_keys)])]
        for wrapped in self.wrapped_keys:
            name = wrapped.key.encode("utf-8")
            text = wrapped.ciphertext.encode("ascii")
            if not 1 <= len(name) <= MAX_KEY_NAME:
                raise EnvelopeUsageError(f"key names must be 1-{MAX_KEY_NAME} bytes")
            if not 1 <= len(text) <= MAX_WRAPPED:
                raise EnvelopeUsageError(f"wrapped keys must be 1-{MAX_WRAPPED} bytes")
            parts += [bytes([len(name)]), name, struct.pack(">H", len(text)), text]
        parts += [self.salt, self.nonce_prefix]
        return b"".join(parts)

    def encode(self) -> bytes:
        """The whole header, commitment included, as written before the first segment."""
        if len(self.commitment) != COMMITMENT_SIZE:
            raise EnvelopeUsageError(f"the commitment must be {COMMITMENT_SIZE} bytes")
        return self.encode_prefix() + self.commitment


def check_segment_size(size: object) -> int:
    """``size`` if it is an allowed segment size, else the rule as an ``EnvelopeUsageError``."""
    if (not isinstance(size, int) or isinstance(size, bool)
            or not MIN_SEGMENT_SIZE <= size <= MAX_SEGMENT_SIZE):
        raise EnvelopeUsageError(
            f"segment_size must be an integer from {MIN_SEGMENT_SIZE} to {MAX_SEGMENT_SIZE}")
    return size


def encode_context(context: Mapping[str, str] | None) -> bytes:
    """The canonical context (FORMAT.md section 2); caller mistakes are usage errors."""
    try:
        encoded = canonical_context(context)
    except ValueError as exc:
        raise EnvelopeUsageError(str(exc)) from None
    if len(encoded) > MAX_CONTEXT_SIZE:
        raise EnvelopeUsageError(
            f"the encryption context may be at most {MAX_CONTEXT_SIZE} bytes encoded")
    return encoded


def decode_context(data: bytes) -> dict[str, str]:
    """Parse a canonical context; anything not in canonical form is ``InvalidEnvelopeError``."""
    try:
        (count,) = struct.unpack_from(">H", data, 0)
        offset, out = 2, {}
        for _ in range(count):
            (klen,) = struct.unpack_from(">H", data, offset)
            key = data[offset + 2: offset + 2 + klen].decode("utf-8")
            offset += 2 + klen
            (vlen,) = struct.unpack_from(">I", data, offset)
            value = data[offset + 4: offset + 4 + vlen].decode("utf-8")
            offset += 4 + vlen
            out[key] = value
    except (struct.error, UnicodeDecodeError):
        raise InvalidEnvelopeError() from None
    # Re-encoding catches short fields, duplicates, bad order and trailing bytes at once.
    if offset != len(data) or canonical_context(out) != data:
        raise InvalidEnvelopeError()
    return out


def _read_exact(src: Readable, n: int) -> bytes:
    """Exactly ``n`` bytes (looping over short pipe reads), or the vague error at EOF."""
    chunks, got = [], 0
    while got < n:
        chunk = src.read(n - got)
        if chunk is None:
            raise EnvelopeUsageError("non-blocking sources are not supported")
        if not chunk:
            raise InvalidEnvelopeError()
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_header_from(src: Readable) -> tuple[EnvelopeHeader, bytes]:
    """Read and parse the header from the current position; returns it and its raw bytes."""
    raw = [_read_exact(src, _FIXED.size)]
    magic, version, algorithm, segment_size, context_size = _FIXED.unpack(raw[0])
    if (magic != MAGIC or version != FORMAT_VERSION or algorithm != ALGORITHM_ID
            or not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE
            or context_size > MAX_CONTEXT_SIZE):
        raise InvalidEnvelopeError()
    context = _read_exact(src, context_size)
    decode_context(context)
    count_byte = _read_exact(src, 1)
    raw += [context, count_byte]
    if not 1 <= count_byte[0] <= MAX_KEYS:
        raise InvalidEnvelopeError()
    wrapped: list[WrappedKey] = []
    for _ in range(count_byte[0]):
        name_len = _read_exact(src, 1)
        name = _read_exact(src, name_len[0]) if name_len[0] else b""
        text_len = _read_exact(src, 2)
        (text_size,) = struct.unpack(">H", text_len)
        if not name or not 1 <= text_size <= MAX_WRAPPED:
            raise InvalidEnvelopeError()
        text = _read_exact(src, text_size)
        try:
            wrapped.append(WrappedKey(name.decode("utf-8"), text.decode("ascii")))
        except UnicodeDecodeError:
            raise InvalidEnvelopeError() from None
        raw += [name_len, name, text_len, text]
    trailer = _read_exact(src, _TRAILER)
    raw.append(trailer)
    header = EnvelopeHeader(
        segment_size=segment_size, context=context, wrapped_keys=tuple(wrapped),
        salt=trailer[:SALT_SIZE], nonce_prefix=trailer[SALT_SIZE:SALT_SIZE + NONCE_PREFIX_SIZE],
        commitment=trailer[SALT_SIZE + NONCE_PREFIX_SIZE:])
    return header, b"".join(raw)


@dataclass(frozen=True)
class Layout:
    """Where each segment sits in a stream of known total size (random access).

    A stream of plaintext size P has ``max(1, ceil(P / S))`` segments: every one
    full except the last, and an empty stream is a single empty last segment.
    So the ciphertext size after the header decides P: full segments of S + 16
    bytes, and a remainder that is either a short last segment (16 .. S + 15
    bytes) or nothing when the last segment is full. Any other size cannot have
    been written; a wrong size that can (a cut at a segment boundary) is caught
    because the segment then read as last was sealed with the flag clear.
    """

    header_size: int
    segment_size: int
    segments: int
    plaintext_size: int

    @classmethod
    def of(cls, header_size: int, segment_size: int, total_size: int) -> Layout:
        body = total_size - header_size
        sealed = segment_size + TAG_SIZE
        full, rest = divmod(body, sealed)
        if body < TAG_SIZE or 0 < rest < TAG_SIZE or (rest == TAG_SIZE and full > 0):
            raise InvalidEnvelopeError()
        segments = full + (1 if rest else 0)
        if segments > MAX_SEGMENTS:
            raise InvalidEnvelopeError()
        return cls(header_size, segment_size, segments, full * segment_size + max(rest - 16, 0))

    def offset(self, index: int) -> int:
        """Byte offset of segment ``index`` in the stream."""
        return self.header_size + index * (self.segment_size + TAG_SIZE)

    def sealed_size(self, index: int) -> int:
        """Bytes of segment ``index`` on disk (plaintext + tag)."""
        if index < self.segments - 1:
            return self.segment_size + TAG_SIZE
        return self.plaintext_size - index * self.segment_size + TAG_SIZE
