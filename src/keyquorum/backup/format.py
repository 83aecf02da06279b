"""The backup file (``KQBK``), byte by byte (docs/FORMAT.md section 6).

::

    magic "KQBK" (4) | version u8 = 1 | algorithm u8 = 1 | segment size u32
    | header length u32 | public header (UTF-8 JSON) | salt (32) | nonce prefix (7)
    | key commitment (32)
    then segments exactly as in the KQST envelope stream (FORMAT.md section 5.3).

The public header says what the backup is (when, from which server and schema
revision, how many rows of each table, how many canaries) and carries every
``seal/...`` entry, so the root key can be opened from the file alone, by any
seal of the seal set. The body is sealed with the KQST stream construction
(``keyquorum.crypto.stream``) under a *backup key*::

    backup key = HKDF-SHA256(IKM = root key, salt = salt, info = "keyquorum backup v1")

which is then the stream's data key: every header byte goes into the key
derivation (an edited header derives another key and fails the commitment
check before any segment is read) and into every segment's associated data.
The root key is the only way to the backup key, and only a seal opens the root
key: the file opens through the seal set and nothing else.

Every failure to parse or authenticate is one ``InvalidBackup`` with one
message: saying which check failed would tell an editor how far an edit got.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from keyquorum.crypto.errors import InvalidCiphertext
from keyquorum.crypto.kdf import hkdf_sha256
from keyquorum.crypto.stream import (
    COMMITMENT_SIZE,
    NONCE_PREFIX_SIZE,
    SALT_SIZE,
    TAG_SIZE,
    SegmentKey,
    commitment_matches,
    derive_stream_key,
    header_digest,
)
from keyquorum.envelope._format import MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE, check_segment_size
from keyquorum.envelope._segments import run_segments, sink_writer, source_filler
from keyquorum.errors import KeyquorumError

MAGIC = b"KQBK"
FORMAT_VERSION = 1
ALGORITHM_ID = 1  # as KQST algorithm 1: AES-256-GCM segments, HKDF-SHA256, STREAM, commitment
FORMAT_NAME = "keyquorum-backup"
DEFAULT_SEGMENT_SIZE = 1 << 20
MAX_PUBLIC_HEADER = 1 << 20  # seal entries are a few KiB; a hostile length is refused unread
BACKUP_KEY_INFO = b"keyquorum backup v1"

_FIXED = struct.Struct(">4sBBII")  # magic, version, algorithm, segment size, header length
_TRAILER = SALT_SIZE + NONCE_PREFIX_SIZE + COMMITMENT_SIZE
_DAMAGED = ("the backup failed to authenticate: it is damaged, truncated or edited, "
            "or it was not made by this seal set")


class InvalidBackup(KeyquorumError):
    """The file is not a backup, or is damaged, truncated or edited (never says which check)."""

    code = "invalid_backup"
    status = 400

    def __init__(self, message: str = _DAMAGED) -> None:
        super().__init__(message)


class BackupMismatch(InvalidBackup):
    """The backup does not belong to the seal set the operator pinned (or cannot be pinned)."""

    code = "backup_mismatch"


@dataclass(frozen=True)
class BackupHeader:
    """Everything before the first segment; ``public`` is the JSON object in the clear."""

    segment_size: int
    public: dict[str, Any]
    salt: bytes = field(repr=False)
    nonce_prefix: bytes = field(repr=False)
    commitment: bytes = field(default=b"", repr=False)

    def encode_prefix(self) -> bytes:
        """The header without its commitment: what the commitment is derived from."""
        check_segment_size(self.segment_size)
        text = json.dumps(self.public, sort_keys=True, separators=(",", ":")).encode("utf-8")
        if len(text) > MAX_PUBLIC_HEADER:
            raise ValueError(f"the public header may be at most {MAX_PUBLIC_HEADER} bytes")
        return (_FIXED.pack(MAGIC, FORMAT_VERSION, ALGORITHM_ID, self.segment_size, len(text))
                + text + self.salt + self.nonce_prefix)

    def seal_entries(self) -> dict[str, bytes]:
        """The stored ``seal/...`` entries the header carries (name → stored value)."""
        seals = self.public.get("seals")
        if not isinstance(seals, dict):
            raise InvalidBackup()
        try:
            return {str(name): base64.b64decode(value, validate=True)
                    for name, value in seals.items()}
        except (binascii.Error, ValueError, TypeError):
            raise InvalidBackup() from None

    @property
    def tables(self) -> dict[str, int]:
        tables = self.public.get("tables")
        if not isinstance(tables, dict) or not all(
                isinstance(n, int) and not isinstance(n, bool) and n >= 0
                for n in tables.values()):
            raise InvalidBackup()
        return {str(name): int(count) for name, count in tables.items()}

    @property
    def canaries(self) -> int:
        count = self.public.get("canaries")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise InvalidBackup()
        return count


def backup_key(root_key: bytes, salt: bytes) -> bytes:
    """The 32-byte key that seals a backup's body, derived from the root key."""
    return hkdf_sha256(root_key, info=BACKUP_KEY_INFO, salt=salt)


def seal_backup(header: BackupHeader, root_key: bytes, chunks: Iterable[bytes]
                ) -> Iterator[bytes]:
    """The whole file: the header, then ``chunks`` (the body) as sealed KQST segments.

    A segment is released only when the next byte is known (so the last one
    carries the last flag); an empty body is one empty last segment.
    """
    prefix = header.encode_prefix()
    key, commitment = derive_stream_key(backup_key(root_key, header.salt), header.salt,
                                        header.nonce_prefix, header_digest(prefix))
    raw = prefix + commitment
    key.bind_header(header_digest(raw))
    yield raw
    size = header.segment_size
    pending = bytearray()
    index = 0
    for chunk in chunks:
        pending += chunk
        while len(pending) > size:
            yield key.seal(index, False, bytes(pending[:size]))
            del pending[:size]
            index += 1
    yield key.seal(index, True, bytes(pending))


def _read_exact(src: IO[bytes], n: int) -> bytes:
    data = src.read(n)
    if data is None or len(data) != n:
        raise InvalidBackup()
    return data


def read_header(src: IO[bytes]) -> tuple[BackupHeader, bytes]:
    """Parse the header from the start of ``src``; returns it and its raw bytes.

    Nothing here is authenticated yet: only ``open_body`` (with the root key) says
    whether the header is the one the backup was made with.
    """
    fixed = src.read(_FIXED.size)
    if fixed is None or len(fixed) < 4 or fixed[:4] != MAGIC:
        raise InvalidBackup("not a keyquorum backup (the file does not start with KQBK)")
    if len(fixed) != _FIXED.size:
        raise InvalidBackup()
    _magic, version, algorithm, segment_size, length = _FIXED.unpack(fixed)
    if version != FORMAT_VERSION or algorithm != ALGORITHM_ID:
        raise InvalidBackup(f"unsupported backup format version {version}.{algorithm}")
    if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE or length > MAX_PUBLIC_HEADER:
        raise InvalidBackup()
    text = _read_exact(src, length)
    trailer = _read_exact(src, _TRAILER)
    try:
        public = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidBackup() from None
    if not isinstance(public, dict) or public.get("format") != FORMAT_NAME:
        raise InvalidBackup()
    header = BackupHeader(segment_size, public, trailer[:SALT_SIZE],
                          trailer[SALT_SIZE:SALT_SIZE + NONCE_PREFIX_SIZE],
                          trailer[SALT_SIZE + NONCE_PREFIX_SIZE:])
    return header, fixed + text + trailer


def body_key(header: BackupHeader, raw: bytes, root_key: bytes) -> SegmentKey:
    """The body's segment key, once the key commitment checks out (constant time)."""
    prefix = raw[:-COMMITMENT_SIZE]
    key, expected = derive_stream_key(backup_key(root_key, header.salt), header.salt,
                                      header.nonce_prefix, header_digest(prefix))
    if not commitment_matches(expected, header.commitment):
        raise InvalidBackup()
    key.bind_header(header_digest(raw))
    return key


def open_body(src: IO[bytes], header: BackupHeader, raw: bytes, root_key: bytes,
              dst: IO[bytes]) -> int:
    """Authenticate and decrypt every segment after the header into ``dst``; bytes written.

    A cut, extended, reordered or edited body, or an edited header, is ``InvalidBackup``.
    """
    key = body_key(header, raw, root_key)
    try:
        _segments, written = run_segments(source_filler(src), sink_writer(dst), key.open_into,
                                          header.segment_size + TAG_SIZE, -TAG_SIZE, 0, None)
    except InvalidCiphertext:  # the envelope's InvalidEnvelopeError is one too
        raise InvalidBackup() from None
    return written
