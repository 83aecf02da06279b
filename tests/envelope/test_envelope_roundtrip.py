"""Streams of every awkward size round-trip, through memory, files, pipes and short reads."""

from __future__ import annotations

import io
import os
import resource
import threading
import time
from pathlib import Path

import pytest

from envelope.envelope_fakes import FakeKeyService, PatternSource, VerifyingSink
from keyquorum.crypto.stream import TAG_SIZE
from keyquorum.envelope import (
    DEFAULT_SEGMENT_SIZE,
    decrypt_file,
    decrypt_stream,
    encrypt_file,
    encrypt_stream,
    read_header,
)

SEG = 64


@pytest.mark.parametrize("threads", [0, 1, 2])
@pytest.mark.parametrize("size", [0, 1, SEG - 1, SEG, SEG + 1, 2 * SEG, 7 * SEG + 5, 9 * SEG])
def test_round_trip_at_every_boundary_size(seal, unseal, size: int, threads: int) -> None:
    data = os.urandom(size)
    stream = seal(data, segment_size=SEG, threads=threads)
    segments = max(1, -(-size // SEG))
    header = read_header(io.BytesIO(stream))
    assert len(stream) == len(header.encode()) + size + segments * TAG_SIZE
    plaintext, result = unseal(stream, threads=threads)
    assert plaintext == data
    assert (result.plaintext_size, result.segments, result.ciphertext_size) == (
        size, segments, len(stream))


def test_default_segment_size_round_trip_with_two_keys(seal, unseal, keys) -> None:
    data = os.urandom(3 * DEFAULT_SEGMENT_SIZE + 1)
    stream = seal(data, segment_size=DEFAULT_SEGMENT_SIZE, threads=1,
                  key_names=("app/primary", "app/dr"))
    header = read_header(io.BytesIO(stream))
    assert header.key_names == ("app/primary", "app/dr")
    assert header.segment_size == DEFAULT_SEGMENT_SIZE
    assert keys.calls["datakey"] == 1 and keys.calls["encrypt"] == 1
    assert unseal(stream)[0] == data


def test_two_encryptions_of_the_same_data_differ(seal) -> None:
    data = b"same bytes" * 50
    first, second = seal(data), seal(data)
    assert first != second
    assert read_header(io.BytesIO(first)).salt != read_header(io.BytesIO(second)).salt


class ShortReads(io.RawIOBase):
    """A source that hands out at most ``chunk`` bytes per read, like a pipe."""

    def __init__(self, data: bytes, chunk: int) -> None:
        self.data, self.chunk, self.pos = data, chunk, 0

    def readable(self) -> bool:
        return True

    def readinto(self, view) -> int:  # type: ignore[override]
        n = min(len(view), self.chunk, len(self.data) - self.pos)
        view[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n


class ReadOnly:
    """A source with ``read`` and nothing else (no ``readinto``)."""

    def __init__(self, data: bytes) -> None:
        self.inner = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self.inner.read(min(n, 7) if n > 0 else n)


class ShortWrites:
    """A sink that takes at most ``chunk`` bytes per write call (a raw file may)."""

    def __init__(self, chunk: int) -> None:
        self.chunk, self.data = chunk, bytearray()

    def write(self, view) -> int:
        n = min(len(view), self.chunk)
        self.data += bytes(view[:n])
        return n


@pytest.mark.parametrize("threads", [0, 2])
def test_short_reads_read_only_sources_and_short_writes(keys, threads: int) -> None:
    data = os.urandom(10 * SEG + 3)
    sealed = ShortWrites(5)
    encrypt_stream(ShortReads(data, 11), sealed, keys=["app/primary"], client=keys,
                   segment_size=SEG, threads=threads)
    opened = ShortWrites(13)
    decrypt_stream(ReadOnly(bytes(sealed.data)), opened, client=keys, threads=threads)
    assert bytes(opened.data) == data


def test_file_helpers_round_trip_and_leave_no_temporary_files(keys, tmp_path: Path) -> None:
    source = tmp_path / "in.bin"
    source.write_bytes(os.urandom(5000))
    encrypt_file(source, tmp_path / "in.kqs", keys=["app/primary"], context={"a": "1"},
                 client=keys, segment_size=1024)
    result = decrypt_file(tmp_path / "in.kqs", tmp_path / "out.bin", context={"a": "1"},
                          client=keys)
    assert (tmp_path / "out.bin").read_bytes() == source.read_bytes()
    assert result.plaintext_size == 5000 and result.key == "app/primary"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.bin", "in.kqs", "out.bin"]
    assert (tmp_path / "out.bin").stat().st_mode & 0o077 == 0  # decrypted data stays private


def test_decrypt_file_to_dev_null_writes_through(keys, tmp_path: Path) -> None:
    encrypt_file(os.devnull, tmp_path / "empty.kqs", keys=["app/primary"], client=keys)
    assert decrypt_file(tmp_path / "empty.kqs", os.devnull, client=keys).plaintext_size == 0


def test_multi_gib_stream_through_a_pipe_in_flat_memory(keys: FakeKeyService) -> None:
    """2 GiB made on the fly, encrypted into an OS pipe and decrypted out of it, never stored."""
    size = 2 * (1 << 30) + 12345
    source = PatternSource(size)
    sink = VerifyingSink(source)
    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []

    def encrypt() -> None:
        try:
            with open(write_fd, "wb", buffering=0) as pipe:
                encrypt_stream(source, pipe, keys=["app/primary"], client=keys)
        except BaseException as exc:  # reported by the main thread
            failure.append(exc)

    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    started = time.perf_counter()
    writer = threading.Thread(target=encrypt)
    writer.start()
    with open(read_fd, "rb", buffering=0) as pipe:
        result = decrypt_stream(pipe, sink, client=keys)
    writer.join()
    assert not failure
    assert (result.plaintext_size, sink.position, sink.mismatch) == (size, size, None)
    assert result.segments == -(-size // DEFAULT_SEGMENT_SIZE)
    assert time.perf_counter() - started < 60
    # Both ends together hold a handful of 1 MiB segments; the high-water mark of
    # this process must not have moved by anything like the stream's size.
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert grown < 64 * 1024, f"peak RSS grew by {grown} KiB"
