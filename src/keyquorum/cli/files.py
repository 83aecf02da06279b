"""``keyquorum file``: encrypt and decrypt files or pipes of any size (envelope encryption).

The bulk data never goes to the server: it hands out a data key wrapped under
the named keys, and the data is encrypted here in segments
(``keyquorum.envelope``; format in docs/FORMAT.md section 5). ``-`` is stdin or
stdout. A file destination is written under a temporary name and renamed
only when complete (on decryption: after the last segment authenticated), so
a damaged or truncated input never leaves a plausible-looking output behind;
on stdout each segment is released only after it authenticates, and a damaged
stream ends with an error and exit status 1.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import stat
import sys
import time
from collections.abc import Callable, Iterator
from typing import IO, Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from ..envelope import (
    DEFAULT_SEGMENT_SIZE,
    DEFAULT_THREADS,
    EnvelopeError,
    EnvelopeResult,
    EnvelopeUsageError,
    decrypt_range,
    decrypt_stream,
    encrypt_stream,
    read_header,
)
from ..envelope._files import atomic_output
from ..envelope._format import Layout
from ._common import client, err_console, parse_pairs, print_json, state

app = typer.Typer(help="Encrypt and decrypt files and pipes of any size (envelope encryption).",
                  no_args_is_help=True)

InArg = Annotated[str, typer.Argument(help="Input file, or '-' for stdin.", show_default=False)]
OutArg = Annotated[str, typer.Argument(help="Output file, or '-' for stdout.", show_default=False)]
ContextOpt = Annotated[list[str] | None, typer.Option(
    "--context", "-c", help="Encryption context key=value (repeat); decrypt needs the same.")]
QuietOpt = Annotated[bool, typer.Option(
    "--quiet", "-q", help="No progress bar (there is none anyway when stderr is not a terminal).")]
ThreadsOpt = Annotated[int, typer.Option(
    "--threads", min=0, max=64, help="Cipher threads beside the reader; 0: one thread only.")]

_SIZE = re.compile(r"(?i)^\s*(\d+)\s*(|b|k|kib|m|mib)\s*$")
_UNITS = {"": 1, "b": 1, "k": 1024, "kib": 1024, "m": 1 << 20, "mib": 1 << 20}


def parse_size(text: str) -> int:
    """``65536``, ``64KiB``, ``1M``: a byte count (binary units)."""
    match = _SIZE.match(text)
    if match is None:
        raise typer.BadParameter("--segment-size takes bytes, e.g. 1048576, 64KiB or 4MiB")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def parse_range(text: str) -> tuple[int, int | None]:
    """``START:END`` (END exclusive; either may be empty) as ``(start, end)``."""
    start, sep, end = text.partition(":")
    if not sep or not re.fullmatch(r"\d*", start) or not re.fullmatch(r"\d*", end):
        raise typer.BadParameter("--range takes START:END in bytes, e.g. 0:4096 or 1048576:")
    low, high = int(start or 0), (int(end) if end else None)
    if high is not None and high < low:
        raise typer.BadParameter("--range END must not be before START")
    return low, high


def _widen_pipe(stream: IO[bytes]) -> None:
    """Ask Linux for a 1 MiB pipe buffer (default 64 KiB): a segment per wake-up, not 16.

    Best effort: other systems, non-pipes and a lower ``pipe-max-size`` keep the default.
    """
    with contextlib.suppress(AttributeError, OSError, ValueError):
        fd = stream.fileno()
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), DEFAULT_SEGMENT_SIZE)


@contextlib.contextmanager
def _source(path: str) -> Iterator[IO[bytes]]:
    if path == "-":
        _widen_pipe(sys.stdin.buffer)
        yield sys.stdin.buffer
        return
    try:
        handle = open(path, "rb", buffering=0)  # noqa: SIM115 - closed below
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        yield handle


@contextlib.contextmanager
def _sink(path: str) -> Iterator[IO[bytes]]:
    if path == "-":
        _widen_pipe(sys.stdout.buffer)
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    with atomic_output(path) as out:
        yield out


def _regular_size(handle: Any) -> int | None:
    with contextlib.suppress(AttributeError, OSError, ValueError):
        info = os.fstat(handle.fileno())
        if stat.S_ISREG(info.st_mode):
            return info.st_size - handle.tell()
    return None


def _plaintext_size(handle: Any) -> int | None:
    """The plaintext size of a regular file's stream, from its header and length (for the bar)."""
    size = _regular_size(handle)
    if size is None:
        return None
    here = handle.tell()
    try:
        header = read_header(handle)
        return Layout.of(handle.tell() - here, header.segment_size, size).plaintext_size
    except EnvelopeError:
        return None  # the real decryption reports it properly
    finally:
        handle.seek(here)


@contextlib.contextmanager
def _progress(show: bool, label: str, total: int | None
              ) -> Iterator[Callable[[int], None] | None]:
    """A Rich progress bar with throughput on stderr, or nothing."""
    if not show:
        yield None
        return
    bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(binary_units=True),
                   TransferSpeedColumn(), TimeRemainingColumn(), console=err_console(),
                   transient=False)
    task = bar.add_task(label, total=total)
    with bar:
        yield lambda n: bar.advance(task, n)


def _run(ctx: typer.Context, quiet: bool, label: str, total: int | None,
         action: Callable[[Callable[[int], None] | None], EnvelopeResult]) -> None:
    show = not quiet and err_console().is_terminal
    started = time.perf_counter()
    try:
        with _progress(show, label, total) as progress:
            result = action(progress)
    except EnvelopeUsageError:
        raise  # a ValueError: the main group prints invalid_argument, exit 2
    except EnvelopeError as exc:
        typer.echo(f"error: {exc.code}: {exc}", err=True)
        raise typer.Exit(1) from None
    except BrokenPipeError:
        typer.echo("error: broken_pipe: the output was closed before the end", err=True)
        with contextlib.suppress(OSError):  # no second error when Python flushes at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(1) from None
    if state(ctx).json:
        print_json({"plaintext_size": result.plaintext_size,
                    "ciphertext_size": result.ciphertext_size, "segments": result.segments,
                    "segment_size": result.header.segment_size, "key": result.key,
                    "keys": list(result.header.key_names),
                    "context": result.header.context_map()})
    elif show:
        seconds = time.perf_counter() - started
        rate = result.plaintext_size / seconds / 1e6 if seconds > 0 else 0.0
        err_console().print(f"{label}: {result.plaintext_size:,} bytes in {seconds:.2f} s "
                            f"({rate:,.0f} MB/s), key {result.key}", highlight=False,
                            markup=False)


@app.command()
def encrypt(
    ctx: typer.Context,
    source: InArg,
    destination: OutArg,
    key: Annotated[list[str], typer.Option(
        "--key", "-k", help="Key to wrap the data key under; repeat for disaster-recovery "
        "copies (any one decrypts).", show_default=False)],
    context: ContextOpt = None,
    segment_size: Annotated[str, typer.Option(
        "--segment-size", help="Plaintext bytes per segment (16 B .. 64 MiB).")
    ] = str(DEFAULT_SEGMENT_SIZE),
    threads: ThreadsOpt = DEFAULT_THREADS,
    quiet: QuietOpt = False,
) -> None:
    """Encrypt SOURCE into DESTINATION under a new data key wrapped by each --key."""
    pairs = parse_pairs(context, "--context")
    size = parse_size(segment_size)
    with _source(source) as src:
        total = _regular_size(src)
        kq = client(ctx)
        with _sink(destination) as dst:
            _run(ctx, quiet, "encrypt", total, lambda progress: encrypt_stream(
                src, dst, keys=key, context=pairs, client=kq, segment_size=size,
                threads=threads, progress=progress))


@app.command()
def decrypt(
    ctx: typer.Context,
    source: InArg,
    destination: OutArg,
    context: ContextOpt = None,
    byte_range: Annotated[str | None, typer.Option(
        "--range", help="Only plaintext bytes START:END (END exclusive, either may be empty); "
        "reads only the segments needed. SOURCE must be a file.")] = None,
    threads: ThreadsOpt = DEFAULT_THREADS,
    quiet: QuietOpt = False,
) -> None:
    """Decrypt SOURCE into DESTINATION; the context must be the one used to encrypt."""
    pairs = parse_pairs(context, "--context")
    span = parse_range(byte_range) if byte_range is not None else None
    with _source(source) as src:
        total = _plaintext_size(src)
        kq = client(ctx)
        with _sink(destination) as dst:
            if span is not None:
                if total is not None:
                    total = max(min(span[1] if span[1] is not None else total, total) - span[0],
                                0)
                _run(ctx, quiet, "decrypt", total, lambda progress: decrypt_range(
                    src, dst, span[0], span[1], context=pairs, client=kq, progress=progress))
            else:
                _run(ctx, quiet, "decrypt", total, lambda progress: decrypt_stream(
                    src, dst, context=pairs, client=kq, threads=threads, progress=progress))
