"""File helpers: paths in, paths out, and no half-written output under the final name.

Output goes to a temporary file next to the destination (same directory, so
the final ``os.replace`` is an atomic rename on one file system) and is
renamed into place only when the whole stream has been written, which on
decryption means after the last segment authenticated. On any failure the
temporary file is removed: the destination is either untouched or complete.
The temporary file is created with mode 0600 (``mkstemp``), and keeps it:
decrypted data should not become readable by others by accident.

A destination that exists and is not a regular file (``/dev/null``, a FIFO, a
terminal) cannot be renamed over; it is written directly, and as with any
pipe each segment is released only after it authenticates. No ``fsync`` is
done: like ``cp``, durability against a power cut is the caller's choice.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

from ._cache import DataKeyCache
from ._format import DEFAULT_SEGMENT_SIZE
from ._keys import KeyService
from ._range import decrypt_range
from ._segments import Progress
from ._stream import DEFAULT_THREADS, EnvelopeResult, decrypt_stream, encrypt_stream

__all__ = ["atomic_output", "decrypt_file", "encrypt_file"]

StrPath = str | os.PathLike[str]


@contextlib.contextmanager
def atomic_output(path: StrPath) -> Iterator[IO[bytes]]:
    """A file object whose content appears at ``path`` only if the block succeeds."""
    target = Path(path)
    try:
        special = not stat.S_ISREG(target.stat().st_mode)
    except FileNotFoundError:
        special = False
    if special:
        with open(target, "wb", buffering=0) as direct:
            yield direct
        return
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part",
                                dir=target.parent if str(target.parent) else ".")
    try:
        with os.fdopen(fd, "wb", buffering=0) as out:
            yield out
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def encrypt_file(src: StrPath, dst: StrPath, *, keys: Sequence[str],
                 context: Mapping[str, str] | None = None, client: KeyService | None = None,
                 segment_size: int = DEFAULT_SEGMENT_SIZE, cache: DataKeyCache | None = None,
                 threads: int = DEFAULT_THREADS, progress: Progress | None = None
                 ) -> EnvelopeResult:
    """Encrypt the file ``src`` into ``dst`` (written whole or not at all)."""
    with open(src, "rb", buffering=0) as source, atomic_output(dst) as sink:
        return encrypt_stream(source, sink, keys=keys, context=context, client=client,
                              segment_size=segment_size, cache=cache, threads=threads,
                              progress=progress)


def decrypt_file(src: StrPath, dst: StrPath, *, context: Mapping[str, str] | None = None,
                 client: KeyService | None = None, threads: int = DEFAULT_THREADS,
                 byte_range: tuple[int, int | None] | None = None,
                 progress: Progress | None = None) -> EnvelopeResult:
    """Decrypt the file ``src`` into ``dst``, renamed into place once every segment checks.

    ``byte_range=(start, end)`` writes only plaintext bytes ``[start, end)``
    (``end=None``: to the end), reading only the segments that hold them.
    """
    with open(src, "rb", buffering=0) as source, atomic_output(dst) as sink:
        if byte_range is not None:
            return decrypt_range(source, sink, byte_range[0], byte_range[1], context=context,
                                 client=client, progress=progress)
        return decrypt_stream(source, sink, context=context, client=client, threads=threads,
                              progress=progress)
