"""Envelope encryption for data of any size: a streaming file format over keyquorum keys.

Bulk data never goes to the key service. The service hands out a data key
(wrapped under one or more keyquorum keys); the data is encrypted here, in
segments, and the wrapped copies travel in the stream's header::

    from keyquorum.client import Client
    from keyquorum.envelope import decrypt_file, encrypt_file

    with Client() as kq:
        encrypt_file("backup.tar", "backup.tar.kqs", keys=["backups/primary", "backups/dr"],
                     context={"host": "db1"}, client=kq)
        decrypt_file("backup.tar.kqs", "restored.tar", context={"host": "db1"}, client=kq)

``encrypt_stream`` / ``decrypt_stream`` take any binary file objects (pipes
included) and use memory bounded by a few segments whatever the size;
``decrypt_range`` reads only the segments a byte range needs from a seekable
source. ``DataKeyCache`` (off unless given) reuses a data key across streams
within limits. The format is in docs/FORMAT.md section 5; errors are drawn as a
tree in ``keyquorum.envelope.errors``.
"""

from __future__ import annotations

from ._cache import CacheStats, DataKeyCache
from ._files import decrypt_file, encrypt_file
from ._format import (
    DEFAULT_SEGMENT_SIZE,
    MAX_SEGMENT_SIZE,
    MIN_SEGMENT_SIZE,
    EnvelopeHeader,
    WrappedKey,
)
from ._keys import KeyService
from ._range import decrypt_range, read_header
from ._stream import DEFAULT_THREADS, EnvelopeResult, decrypt_stream, encrypt_stream
from .errors import EnvelopeError, EnvelopeUsageError, InvalidEnvelopeError, NoUsableKeyError

__all__ = [
    "DEFAULT_SEGMENT_SIZE",
    "DEFAULT_THREADS",
    "MAX_SEGMENT_SIZE",
    "MIN_SEGMENT_SIZE",
    "CacheStats",
    "DataKeyCache",
    "EnvelopeError",
    "EnvelopeHeader",
    "EnvelopeResult",
    "EnvelopeUsageError",
    "InvalidEnvelopeError",
    "KeyService",
    "NoUsableKeyError",
    "WrappedKey",
    "decrypt_file",
    "decrypt_range",
    "decrypt_stream",
    "encrypt_file",
    "encrypt_stream",
    "read_header",
]
