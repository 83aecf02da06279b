"""``encrypt_stream`` and ``decrypt_stream``: any binary file object in, any out.

Encrypting: get a data key (from the server, or a ``DataKeyCache``), build the
header, derive the stream's segment key and commitment, write the header, then
the segments. Decrypting: read and parse the header, check the caller's
context against it, open a wrapped data key, check the commitment (constant
time) before reading any segment, then open the segments in order and release
each one only after its tag checks. A stream that ends early, goes on after its
last segment, or has a segment moved, swapped in from another stream or edited
ends in ``InvalidEnvelopeError``: never in a silent, shorter success.

Writing to a pipe or socket cannot be undone, so a consumer of
``decrypt_stream``'s output must treat it as complete only when the call
returns; the file helpers (``decrypt_file``) write to a temporary file and
rename it into place only after the last segment authenticates.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from keyquorum.client import Client
from keyquorum.crypto.errors import InvalidCiphertext
from keyquorum.crypto.random import random_bytes
from keyquorum.crypto.stream import (
    NONCE_PREFIX_SIZE,
    SALT_SIZE,
    TAG_SIZE,
    SegmentKey,
    commitment_matches,
    derive_stream_key,
    header_digest,
)

from ._cache import DataKeyCache
from ._format import (
    DEFAULT_SEGMENT_SIZE,
    EnvelopeHeader,
    check_segment_size,
    encode_context,
    read_header_from,
)
from ._keys import KeyService, NewDataKey, new_data_key, open_data_key
from ._segments import Job, run_segments, sink_writer, source_filler
from .errors import EnvelopeUsageError, InvalidEnvelopeError

__all__ = [
    "DEFAULT_THREADS",
    "EnvelopeResult",
    "decrypt_stream",
    "encrypt_stream",
    "open_header",
    "seal_stream",
    "segment_opener",
]

# Measured by bench/envelope.py on two cores (bench/README.md): one worker beside
# the reader is +15-25 % over one thread, a second worker 0-25 % more (noisy, and
# nothing when the other core is busy) for two more segment buffers. One keeps
# memory at three segments.
DEFAULT_THREADS = 1

Progress = Callable[[int], None]


@dataclass(frozen=True)
class EnvelopeResult:
    """What a call did: the header, the sizes, and the key whose copy was used."""

    header: EnvelopeHeader
    plaintext_size: int
    ciphertext_size: int
    key: str
    segments: int


@contextmanager
def client_for(client: KeyService | None) -> Iterator[KeyService]:
    """The caller's client, or a ``Client()`` from the environment, closed afterwards."""
    if client is not None:
        yield client
        return
    with Client() as default:
        yield default


def check_threads(threads: object) -> int:
    if not isinstance(threads, int) or isinstance(threads, bool) or not 0 <= threads <= 64:
        raise EnvelopeUsageError("threads must be an integer from 0 to 64")
    return threads


def remaining_size(src: Any) -> int | None:
    """Bytes left in ``src`` when it is a regular file (for the cache's byte limit)."""
    try:
        info = os.fstat(src.fileno())
        if stat.S_ISREG(info.st_mode):
            return max(info.st_size - src.tell(), 0)
    except (AttributeError, OSError, ValueError):
        pass
    try:
        if src.seekable():
            here = src.tell()
            end = src.seek(0, os.SEEK_END)
            src.seek(here)
            return max(end - here, 0)
    except (AttributeError, OSError, ValueError):
        pass
    return None


def encrypt_stream(src: Any, dst: Any, *, keys: Sequence[str],
                   context: Mapping[str, str] | None = None, client: KeyService | None = None,
                   segment_size: int = DEFAULT_SEGMENT_SIZE, cache: DataKeyCache | None = None,
                   threads: int = DEFAULT_THREADS,
                   progress: Progress | None = None) -> EnvelopeResult:
    """Encrypt everything readable from ``src`` into ``dst`` under a new data key.

    ``keys`` names one or more keyquorum keys: the data key comes from the
    first (``datakey``) and is wrapped under each further one (``encrypt``), so
    any one of them can decrypt (for example a primary and a disaster-recovery
    key). ``context`` is bound to the stream and must be given again to decrypt.
    ``progress(n)`` is called with the plaintext bytes of each segment written
    (from a worker thread when ``threads > 0``).
    """
    check_segment_size(segment_size)
    check_threads(threads)
    context_bytes = encode_context(context)
    with client_for(client) as service:
        if cache is not None:
            data_key = cache.acquire(service, keys, context, context_bytes, remaining_size(src))
        else:
            data_key = new_data_key(service, keys, context)
    try:
        return seal_stream(src, dst, data_key, context_bytes, segment_size, threads=threads,
                           progress=progress)
    finally:
        data_key.wipe()


def seal_stream(src: Any, dst: Any, data_key: NewDataKey, context_bytes: bytes,
                segment_size: int, *, threads: int = 0, progress: Progress | None = None,
                salt: bytes | None = None, nonce_prefix: bytes | None = None) -> EnvelopeResult:
    """Write the header and the sealed segments of ``src`` to ``dst`` (no server calls).

    ``salt`` and ``nonce_prefix`` are for known-answer tests only: fresh random
    values are what keep two streams under one data key apart.
    """
    header = EnvelopeHeader(
        segment_size=segment_size, context=context_bytes, wrapped_keys=data_key.wrapped,
        salt=random_bytes(SALT_SIZE) if salt is None else salt,
        nonce_prefix=random_bytes(NONCE_PREFIX_SIZE) if nonce_prefix is None else nonce_prefix)
    prefix = header.encode_prefix()
    key, commitment = derive_stream_key(data_key.plaintext, header.salt, header.nonce_prefix,
                                        header_digest(prefix))
    header = EnvelopeHeader(header.segment_size, header.context, header.wrapped_keys,
                            header.salt, header.nonce_prefix, commitment)
    raw = prefix + commitment
    key.bind_header(header_digest(raw))
    write = sink_writer(dst)
    write(memoryview(raw))
    segments, written = run_segments(source_filler(src), write, key.seal_into, segment_size,
                                     TAG_SIZE, threads, progress)
    plaintext = written - segments * TAG_SIZE
    return EnvelopeResult(header, plaintext, len(raw) + written, data_key.wrapped[0].key,
                          segments)


def segment_opener(key: SegmentKey) -> Job:
    """``key.open_into`` raising the envelope's own vague error (still an ``InvalidCiphertext``)."""
    open_into = key.open_into

    def open_segment(index: int, last: bool, sealed: memoryview, out: memoryview) -> int:
        try:
            return open_into(index, last, sealed, out)
        except InvalidCiphertext:
            raise InvalidEnvelopeError() from None

    return open_segment


def open_header(header: EnvelopeHeader, raw: bytes, data_key: bytearray | bytes) -> SegmentKey:
    """The segment key of a parsed header, after the key commitment checks out."""
    prefix = raw[:-len(header.commitment)]
    key, expected = derive_stream_key(data_key, header.salt, header.nonce_prefix,
                                      header_digest(prefix))
    if not commitment_matches(expected, header.commitment):
        raise InvalidEnvelopeError()
    key.bind_header(header_digest(raw))
    return key


def unlock(src: Any, context: Mapping[str, str] | None, service: KeyService
           ) -> tuple[EnvelopeHeader, bytes, SegmentKey, str]:
    """Read the header from ``src``, check the context, open a data key, check the commitment."""
    context_bytes = encode_context(context)
    header, raw = read_header_from(src)
    # The context is in the clear in the header; comparing it first saves the
    # server calls, and the server would refuse the wrapped keys anyway.
    if header.context != context_bytes:
        raise InvalidEnvelopeError()
    data_key, name = open_data_key(service, header.wrapped_keys, context)
    try:
        return header, raw, open_header(header, raw, data_key), name
    finally:
        data_key[:] = bytes(len(data_key))


def decrypt_stream(src: Any, dst: Any, *, context: Mapping[str, str] | None = None,
                   client: KeyService | None = None, threads: int = DEFAULT_THREADS,
                   progress: Progress | None = None) -> EnvelopeResult:
    """Decrypt the stream in ``src`` into ``dst``, each segment once it authenticates.

    ``context`` must be the one given to ``encrypt_stream``. Raises
    ``InvalidEnvelopeError`` for any damage (checked before the first byte of
    that segment reaches ``dst``) and ``NoUsableKeyError`` when no wrapped key
    opens for this client.
    """
    check_threads(threads)
    with client_for(client) as service:
        header, raw, key, name = unlock(src, context, service)
    segments, written = run_segments(source_filler(src), sink_writer(dst), segment_opener(key),
                                     header.segment_size + TAG_SIZE, -TAG_SIZE, threads,
                                     progress)
    return EnvelopeResult(header, written, len(raw) + written + segments * TAG_SIZE, name,
                          segments)

