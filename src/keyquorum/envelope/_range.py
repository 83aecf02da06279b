"""Random access: decrypt a byte range from a seekable stream, reading only what it needs.

Segment ``i`` starts at ``header + i * (segment_size + 16)``, so the segments
holding plaintext bytes ``[start, end)`` are found by arithmetic and read
alone. One more segment is always read: the last one. Its tag (sealed with the
last-segment flag) authenticates where the stream ends, so a truncated or
extended file fails here too, and the range is clamped to an authenticated
size rather than to whatever the file's length claims. Cost: the header, one
key unwrap, the range's segments and the last segment, whatever the file size.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from keyquorum.crypto.stream import TAG_SIZE, SegmentKey

from ._format import EnvelopeHeader, Layout, read_header_from
from ._keys import KeyService
from ._segments import Progress, sink_writer, source_filler
from ._stream import EnvelopeResult, client_for, segment_opener, unlock
from .errors import EnvelopeUsageError, InvalidEnvelopeError

__all__ = ["check_range", "decrypt_range", "read_header"]


def read_header(src: Any) -> EnvelopeHeader:
    """Parse the header at ``src``'s position (key names, context, segment size).

    Nothing is authenticated yet: use it to decide what to do, not as proof.
    """
    return read_header_from(src)[0]


def check_range(start: object, end: object) -> tuple[int, int | None]:
    """``(start, end)`` if they make a byte range, else the rule as a usage error."""
    if not isinstance(start, int) or isinstance(start, bool) or start < 0:
        raise EnvelopeUsageError("range start must be a non-negative integer")
    if end is None:
        return start, None
    if not isinstance(end, int) or isinstance(end, bool) or end < start:
        raise EnvelopeUsageError("range end must be an integer no smaller than its start")
    return start, end


def decrypt_range(src: Any, dst: Any, start: int, end: int | None = None, *,
                  context: Mapping[str, str] | None = None, client: KeyService | None = None,
                  progress: Progress | None = None) -> EnvelopeResult:
    """Write plaintext bytes ``[start, end)`` of the stream in ``src`` to ``dst``.

    ``src`` must be seekable, positioned at the stream's first byte (usually 0).
    ``end=None`` means to the end; like a slice, a range past the end is cut
    to the stream's (authenticated) size. The result's ``plaintext_size`` is
    the whole stream's; the bytes written are ``min(end, size) - start`` or 0.
    """
    start, end = check_range(start, end)
    try:
        seekable = bool(src.seekable())
    except (AttributeError, OSError, ValueError):
        seekable = False
    if not seekable:
        raise EnvelopeUsageError("decrypt_range needs a seekable source (a file, not a pipe)")
    base = src.tell()
    with client_for(client) as service:
        header, raw, key, name = unlock(src, context, service)
    total = src.seek(0, os.SEEK_END) - base
    layout = Layout.of(len(raw), header.segment_size, total)
    reader = _SegmentReader(src, base, layout, key)
    reader.open(layout.segments - 1)  # authenticates the size before anything is written
    size = layout.plaintext_size
    stop = size if end is None else min(end, size)
    write = sink_writer(dst)
    segment = header.segment_size
    for index in range(start // segment, -(-stop // segment)) if start < stop else ():
        plain = reader.open(index)
        low = max(start - index * segment, 0)
        high = min(stop - index * segment, len(plain))
        write(plain[low:high])
        if progress is not None:
            progress(high - low)
    return EnvelopeResult(header, size, total, name, layout.segments)


class _SegmentReader:
    """Reads and opens one segment at a time into two reused buffers."""

    def __init__(self, src: Any, base: int, layout: Layout, key: SegmentKey) -> None:
        self.src, self.base, self.layout = src, base, layout
        self.open_into = segment_opener(key)
        self.fill = source_filler(src)
        self.sealed = memoryview(bytearray(layout.segment_size + TAG_SIZE))
        self.plain = memoryview(bytearray(layout.segment_size))

    def open(self, index: int) -> memoryview:
        size = self.layout.sealed_size(index)
        self.src.seek(self.base + self.layout.offset(index))
        if self.fill(self.sealed[:size]) != size:
            raise InvalidEnvelopeError()  # the file shrank while we read it
        last = index == self.layout.segments - 1
        n = self.open_into(index, last, self.sealed[:size], self.plain[:size - TAG_SIZE])
        return self.plain[:n]
