"""Moving segments from a source through the cipher to a sink, in constant memory.

Both directions are the same loop: read one segment (``segment_size`` bytes of
plaintext, or ``segment_size + 16`` of ciphertext), learn whether it is the
last, seal or open it, write the result. Whether a segment is the last is only
known once the next byte is seen, so the loop reads one byte ahead: a segment
buffer of ``size + 1`` bytes whose extra byte, when present, becomes the first
byte of the next segment. No segment is written before it is sealed or, on
decryption, before its tag has been checked.

``threads=0`` is that loop alone: two segment buffers (in and out) and a few
bytes, whatever the stream's size. ``threads=N`` keeps the same order of
events but overlaps them: the calling thread reads the next segment while N
workers run the cipher (pyca releases the GIL in it) and write their results
strictly in segment order. Memory is then ``N + 1`` input buffers and ``N``
output buffers: three segments for the default ``N = 1``, still flat. A
failure anywhere stops the reader, lets nothing after the failed segment reach
the sink, and is raised in the calling thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, Protocol

from .errors import EnvelopeUsageError, InvalidEnvelopeError

__all__ = ["Job", "Source", "run_segments", "sink_writer", "source_filler"]

# (index, last, input, output) -> bytes written to output; raises on a bad segment.
Job = Callable[[int, bool, memoryview, memoryview], int]
Filler = Callable[[memoryview], int]
Writer = Callable[[memoryview], None]
Progress = Callable[[int], None]


class Source(Protocol):
    def read(self, n: int = -1, /) -> bytes | None: ...


def source_filler(src: Any) -> Filler:
    """``fill(view)``: fill ``view`` from ``src`` (looping over short reads); bytes read.

    Fewer bytes than ``len(view)`` means end of stream. ``readinto`` is used
    when the source has it (no copy); otherwise ``read``.
    """
    readinto = getattr(src, "readinto", None)

    def fill(view: memoryview) -> int:
        got, want = 0, len(view)
        while got < want:
            if readinto is not None:
                n = readinto(view[got:])
            else:
                chunk = src.read(want - got)
                n = None if chunk is None else len(chunk)
                if n:
                    view[got:got + n] = chunk
            if n is None:
                raise EnvelopeUsageError("non-blocking sources are not supported")
            if n == 0:
                break
            got += n
        return got

    return fill


def sink_writer(dst: Any) -> Writer:
    """``write(view)``: all of ``view`` to ``dst``, looping over short raw writes."""
    write = dst.write

    def write_all(view: memoryview) -> None:
        while view:
            n = write(view)
            if n is None:
                raise EnvelopeUsageError("non-blocking sinks are not supported")
            if n >= len(view):
                return
            view = view[n:]

    return write_all


def run_segments(fill: Filler, write: Writer, job: Job, in_size: int, delta: int,
                 threads: int, progress: Progress | None) -> tuple[int, int]:
    """Run every segment through ``job``; returns ``(segments, bytes written)``.

    ``in_size`` is a full input segment; an output is its input's size + ``delta``
    (+16 sealing, -16 opening).
    """
    if threads == 0:
        return _sequential(fill, write, job, in_size, delta, progress)
    return _Pipeline(fill, write, job, in_size, delta, threads, progress).run()


def _sequential(fill: Filler, write: Writer, job: Job, in_size: int, delta: int,
                progress: Progress | None) -> tuple[int, int]:
    buf = memoryview(bytearray(in_size + 1))
    out = memoryview(bytearray(in_size + max(delta, 0)))
    have = fill(buf)
    index = written = 0
    while True:
        last = have <= in_size
        n = min(have, in_size)
        if n + delta < 0:
            raise InvalidEnvelopeError()  # shorter than a tag: truncated
        size = job(index, last, buf[:n], out[:n + delta])
        write(out[:size])
        written += size
        if progress is not None:
            progress(min(n, n + delta))
        if last:
            return index + 1, written
        buf[0] = buf[in_size]
        have = 1 + fill(buf[1:])
        index += 1


class _Slot:
    """One segment read and waiting for (or in) a worker."""

    __slots__ = ("inp",)

    def __init__(self, in_size: int) -> None:
        self.inp = memoryview(bytearray(in_size))


class _Pipeline:
    """Reader (calling thread) → N workers that each run the cipher, then write in turn.

    A worker takes a filled slot, seals or opens it, waits until every earlier
    segment is written (``turn``), writes, and hands the slot back to the
    reader. One wake-up per segment each way: fewer thread switches than a
    pool plus a separate writer, which on small machines costs more than the
    cipher itself.

    A failure is pinned to the segment it happened at (``failed_at``): every
    earlier segment is still written, as the one-thread loop would have done,
    and no later one is, so the output after an error is the same whatever the
    thread count. The error of the earliest failed segment is raised.
    """

    def __init__(self, fill: Filler, write: Writer, job: Job, in_size: int, delta: int,
                 threads: int, progress: Progress | None) -> None:
        self.fill, self.write, self.job = fill, write, job
        self.in_size, self.delta, self.threads, self.progress = in_size, delta, threads, progress
        self.free: queue.SimpleQueue[_Slot] = queue.SimpleQueue()
        for _ in range(threads + 1):
            self.free.put(_Slot(in_size))
        self.work: queue.SimpleQueue[tuple[_Slot, int, bool, int] | None] = queue.SimpleQueue()
        self.turn = threading.Condition()
        self.next_to_write = 0
        self.failed_at: int | None = None
        self.error: BaseException | None = None
        self.segments = 0
        self.written = 0

    def run(self) -> tuple[int, int]:
        workers = [threading.Thread(target=self._work, args=(self.in_size + max(self.delta, 0),),
                                    name=f"keyquorum-envelope-{i}", daemon=True)
                   for i in range(self.threads)]
        for worker in workers:
            worker.start()
        try:
            self._read_all()
        except BaseException as exc:
            self._fail(self.segments, exc)  # the segment the reader was making
        finally:
            for _ in workers:
                self.work.put(None)
            for worker in workers:
                worker.join()
        if self.error is not None:
            raise self.error
        return self.segments, self.written

    def _fail(self, index: int, exc: BaseException) -> None:
        with self.turn:
            if self.failed_at is None or index < self.failed_at:
                self.failed_at, self.error = index, exc
            self.turn.notify_all()

    def _stopped_before(self, index: int) -> bool:
        return self.failed_at is not None and index >= self.failed_at

    def _read_all(self) -> None:
        carry = memoryview(bytearray(1))
        has_carry = False
        while True:
            slot = self.free.get()
            if self.failed_at is not None:
                return
            start = 0
            if has_carry:
                slot.inp[0] = carry[0]
                start = 1
            n = start + self.fill(slot.inp[start:])
            last = n < self.in_size or self.fill(carry) == 0
            has_carry = not last
            if n + self.delta < 0:
                raise InvalidEnvelopeError()  # shorter than a tag: truncated
            self.work.put((slot, self.segments, last, n))
            self.segments += 1
            if last:
                return

    def _work(self, out_size: int) -> None:
        out = memoryview(bytearray(out_size))  # each worker's own output buffer
        while True:
            item = self.work.get()
            if item is None:
                return
            slot, index, last, n = item
            try:
                size = self.job(index, last, slot.inp[:n], out[:n + self.delta])
                with self.turn:
                    while self.next_to_write != index and not self._stopped_before(index):
                        self.turn.wait()
                    if self._stopped_before(index):
                        continue  # nothing after a failed segment reaches the sink
                self.write(out[:size])
                self.written += size
                if self.progress is not None:
                    self.progress(min(n, n + self.delta))
                with self.turn:
                    self.next_to_write += 1
                    self.turn.notify_all()
            except BaseException as exc:
                self._fail(index, exc)
            finally:
                self.free.put(slot)
