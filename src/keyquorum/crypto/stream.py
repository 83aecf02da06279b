"""Segmented AES-256-GCM for streams (the STREAM construction), with key commitment.

The envelope format (``keyquorum.envelope``, docs/FORMAT.md section 5) cuts a
stream into segments and seals each one on its own, so any size can be
encrypted and decrypted in constant memory and any segment can be opened alone.
This module holds only the cryptography of that; the byte layout lives in the
envelope package.

- ``derive_stream_key`` turns a data key into a per-stream segment key and a
  32-byte key commitment with HKDF-SHA256. The salt is random per stream, so one
  data key (say, reused by a data-key cache) never gives two streams the same
  segment key; ``info`` binds the stream header, so an edited header derives
  another key and fails the commitment check before any segment is read.
- The commitment is what makes a stream decrypt under at most one data key: a
  second key with the same commitment would be an HKDF collision. It is checked
  with ``commitment_matches`` (constant time: the expected value is secret-derived).
- ``SegmentKey`` seals and opens segment ``i`` with the nonce
  ``prefix (7) || u32 i || u8 last``. The counter makes reordering and splicing
  fail; the last-segment flag makes truncation at a segment boundary and
  appended segments fail. Each (key, nonce) pair is used once: the key is new
  per stream and the counter is unique within it.

The ``*_into`` methods write into caller-owned buffers (pyca's ``encrypt_into``
/ ``decrypt_into``), so the hot loop allocates nothing per segment; pyca
releases the GIL inside the cipher, so several threads can seal segments at once.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keyquorum.crypto.errors import InvalidCiphertext
from keyquorum.crypto.kdf import hkdf_sha256

__all__ = [
    "COMMITMENT_SIZE",
    "DATA_KEY_SIZE",
    "MAX_SEGMENTS",
    "NONCE_PREFIX_SIZE",
    "SALT_SIZE",
    "TAG_SIZE",
    "SegmentKey",
    "commitment_matches",
    "derive_stream_key",
    "header_digest",
]

DATA_KEY_SIZE = 32
SALT_SIZE = 32
NONCE_PREFIX_SIZE = 7
COMMITMENT_SIZE = 32
TAG_SIZE = 16
MAX_SEGMENTS = 2**32  # the counter is a u32: segment indexes 0 .. 2^32-1

_INFO_LABEL = b"keyquorum stream v1"
_COUNTER = struct.Struct(">IB")


def header_digest(data: bytes | bytearray | memoryview) -> bytes:
    """SHA-256 of header bytes: what binds the header into the key and every segment."""
    return hashlib.sha256(data).digest()


def derive_stream_key(data_key: bytes | bytearray, salt: bytes, nonce_prefix: bytes,
                      header_hash: bytes) -> tuple[SegmentKey, bytes]:
    """The stream's segment key and its 32-byte key commitment.

    ``okm = HKDF-SHA256(ikm=data_key, salt=salt, info="keyquorum stream v1" ||
    header_hash, L=64)``; the first half keys AES-256-GCM, the second half is the
    commitment. ``header_hash`` is the digest of the header up to (not
    including) the commitment.
    """
    if len(data_key) != DATA_KEY_SIZE:
        raise ValueError(f"data keys must be {DATA_KEY_SIZE} bytes")
    if len(salt) != SALT_SIZE:
        raise ValueError(f"stream salts must be {SALT_SIZE} bytes")
    if len(header_hash) != 32:
        raise ValueError("header_hash must be a 32-byte SHA-256 digest")
    okm = hkdf_sha256(bytes(data_key), info=_INFO_LABEL + header_hash, length=64, salt=salt)
    return SegmentKey(okm[:32], nonce_prefix), okm[32:]


def commitment_matches(expected: bytes, stored: bytes) -> bool:
    """Constant-time comparison: timing must not tell how much of a commitment matched."""
    return hmac.compare_digest(expected, stored)


class SegmentKey:
    """The AES-256-GCM key of one stream; seals and opens its segments by index.

    ``aad`` (the digest of the whole header, commitment included) is set once
    the header is complete and is bound into every segment. The repr shows
    nothing secret.
    """

    __slots__ = ("_aad", "_cipher", "_prefix")

    def __init__(self, key: bytes, nonce_prefix: bytes) -> None:
        if len(key) != 32:
            raise ValueError("segment keys must be 32 bytes")
        if len(nonce_prefix) != NONCE_PREFIX_SIZE:
            raise ValueError(f"nonce prefixes must be {NONCE_PREFIX_SIZE} bytes")
        self._cipher = AESGCM(key)
        self._prefix = bytes(nonce_prefix)
        self._aad = b""

    def __repr__(self) -> str:
        return "SegmentKey(alg='aes-256-gcm')"

    def bind_header(self, header_hash: bytes) -> None:
        """Authenticate ``header_hash`` with every segment from now on."""
        self._aad = bytes(header_hash)

    def nonce(self, index: int, last: bool) -> bytes:
        """``prefix || u32 index || u8 last``: unique per segment of this stream."""
        if not 0 <= index < MAX_SEGMENTS:
            raise ValueError(f"a stream holds at most {MAX_SEGMENTS} segments")
        return self._prefix + _COUNTER.pack(index, 1 if last else 0)

    def seal_into(self, index: int, last: bool, plaintext: memoryview | bytes | bytearray,
                  out: memoryview | bytearray) -> int:
        """Seal segment ``index`` into ``out`` (``len(plaintext) + 16`` bytes); returns its size."""
        return self._cipher.encrypt_into(self.nonce(index, last), plaintext, self._aad, out)

    def open_into(self, index: int, last: bool, sealed: memoryview | bytes | bytearray,
                  out: memoryview | bytearray) -> int:
        """Open segment ``index`` into ``out`` (``len(sealed) - 16`` bytes); returns that size.

        Any failure (a short segment, a wrong index or flag, a modified byte) is
        the one ``InvalidCiphertext``. OpenSSL writes the plaintext before it
        checks the tag, so on failure ``out`` is zeroed here: unauthenticated
        bytes never stay in a buffer a caller might release by mistake.
        """
        if len(sealed) < TAG_SIZE:
            raise InvalidCiphertext()
        try:
            return self._cipher.decrypt_into(self.nonce(index, last), sealed, self._aad, out)
        except (InvalidTag, ValueError):
            out[:] = bytes(len(out))
            raise InvalidCiphertext() from None

    def seal(self, index: int, last: bool, plaintext: bytes) -> bytes:
        """Seal one segment into a new ``bytes`` (tests and small inputs)."""
        out = bytearray(len(plaintext) + TAG_SIZE)
        self.seal_into(index, last, plaintext, out)
        return bytes(out)

    def open(self, index: int, last: bool, sealed: bytes) -> bytes:
        """Open one segment into a new ``bytes``, or raise ``InvalidCiphertext``."""
        out = bytearray(max(len(sealed) - TAG_SIZE, 0))
        self.open_into(index, last, sealed, out)
        return bytes(out)
