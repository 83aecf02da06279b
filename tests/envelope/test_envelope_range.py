"""Byte ranges: every boundary, only the segments needed, and the size authenticated."""

from __future__ import annotations

import io
import itertools
import os

import pytest

from keyquorum.envelope import (
    EnvelopeUsageError,
    InvalidEnvelopeError,
    decrypt_range,
    read_header,
)

SEG = 32
CONTEXT = {"tenant": "acme", "purpose": "backup"}


class CountingReader(io.BytesIO):
    """A seekable source that records which byte spans were read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.spans: list[tuple[int, int]] = []

    def readinto(self, buffer) -> int:  # type: ignore[override]
        start = self.tell()
        n = super().readinto(buffer)
        self.spans.append((start, start + n))
        return n

    def read(self, size: int | None = -1) -> bytes:
        start = self.tell()
        data = super().read(size)
        self.spans.append((start, start + len(data)))
        return data


def boundaries(size: int) -> list[int]:
    points = {0, 1, size - 1, size, size + 1, size + SEG}
    for k in range(1, size // SEG + 2):
        points |= {k * SEG - 1, k * SEG, k * SEG + 1}
    return sorted(p for p in points if p >= 0)


@pytest.mark.parametrize("size", [0, 1, SEG, 4 * SEG, 4 * SEG + 7])
def test_every_range_between_boundaries(seal, keys, size: int) -> None:
    data = os.urandom(size)
    stream = seal(data, segment_size=SEG)
    for start, end in itertools.combinations_with_replacement(boundaries(size), 2):
        out = io.BytesIO()
        result = decrypt_range(io.BytesIO(stream), out, start, end, context=CONTEXT, client=keys)
        assert out.getvalue() == data[start:end], (start, end)
        assert result.plaintext_size == size
    out = io.BytesIO()
    decrypt_range(io.BytesIO(stream), out, SEG + 3, None, context=CONTEXT, client=keys)
    assert out.getvalue() == data[SEG + 3:]


def test_reads_only_the_header_the_range_and_the_last_segment(seal, keys) -> None:
    data = os.urandom(100 * SEG + 5)
    stream = seal(data, segment_size=SEG)
    header_size = len(read_header(io.BytesIO(stream)).encode())
    source = CountingReader(stream)
    out = io.BytesIO()
    decrypt_range(source, out, 40 * SEG + 3, 42 * SEG - 1, context=CONTEXT, client=keys)
    assert out.getvalue() == data[40 * SEG + 3:42 * SEG - 1]
    sealed = SEG + 16
    body = [(a - header_size, b - header_size) for a, b in source.spans
            if a >= header_size and b > a]
    segments_read = sorted({a // sealed for a, _ in body})
    assert segments_read == [40, 41, 100]  # the range's two, and the last one (the size)
    assert sum(b - a for a, b in source.spans) < header_size + 4 * sealed


def test_a_truncated_file_fails_even_for_an_early_range(seal, keys) -> None:
    stream = seal(os.urandom(10 * SEG), segment_size=SEG)
    for cut in (SEG + 16, 1, 17):
        with pytest.raises(InvalidEnvelopeError):
            decrypt_range(io.BytesIO(stream[:-cut]), io.BytesIO(), 0, 10, context=CONTEXT,
                          client=keys)


def test_an_extended_file_fails(seal, keys) -> None:
    stream = seal(os.urandom(10 * SEG), segment_size=SEG)
    with pytest.raises(InvalidEnvelopeError):
        decrypt_range(io.BytesIO(stream + bytes(SEG + 16)), io.BytesIO(), 0, 10,
                      context=CONTEXT, client=keys)


def test_a_damaged_segment_inside_the_range_releases_nothing_after_it(seal, keys) -> None:
    data = os.urandom(10 * SEG)
    stream = bytearray(seal(data, segment_size=SEG))
    header_size = len(read_header(io.BytesIO(bytes(stream))).encode())
    stream[header_size + 3 * (SEG + 16) + 5] ^= 1  # segment 3
    out = io.BytesIO()
    with pytest.raises(InvalidEnvelopeError):
        decrypt_range(io.BytesIO(bytes(stream)), out, SEG, 6 * SEG, context=CONTEXT,
                      client=keys)
    assert out.getvalue() == data[SEG:3 * SEG]


def test_a_range_starting_mid_stream_in_a_larger_file(seal, keys) -> None:
    """The stream need not start at offset 0: ranges are relative to where it starts."""
    data = os.urandom(3 * SEG + 1)
    source = io.BytesIO(b"prefix-bytes" + seal(data, segment_size=SEG))
    source.seek(12)
    out = io.BytesIO()
    decrypt_range(source, out, SEG - 1, 2 * SEG + 1, context=CONTEXT, client=keys)
    assert out.getvalue() == data[SEG - 1:2 * SEG + 1]


class Pipe(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


@pytest.mark.parametrize(("start", "end", "rule"), [
    (-1, 5, "start"), (5, 4, "end"), (1.5, 3, "start"), (0, "9", "end")])
def test_bad_ranges_are_caller_mistakes(keys, start, end, rule: str) -> None:
    with pytest.raises(EnvelopeUsageError, match=rule):
        decrypt_range(io.BytesIO(b""), io.BytesIO(), start, end, client=keys)


def test_a_pipe_cannot_be_read_at_random(keys) -> None:
    with pytest.raises(EnvelopeUsageError, match="seekable"):
        decrypt_range(Pipe(), io.BytesIO(), 0, 1, client=keys)
