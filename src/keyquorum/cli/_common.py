"""What every CLI command shares: the global options, the client, input and output.

The parts that need no Typer (``CliState``, pairs, JSON) live in ``_core``, which
``keyquorum.cli.shortcut`` uses alone. Rich and the SDK are imported where they are
first used, not here: ``encrypt`` in a shell loop should not pay for table rendering
it never does (``bench/cli.py``).
"""

from __future__ import annotations

import base64
import binascii
import re
import shutil
import sys
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ._core import CliState, json_text, split_pair

if TYPE_CHECKING:
    from rich.console import Console

    from ..client import Client


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_object(CliState)
    if obj is None:  # a command invoked without the main callback (tests of one command)
        obj = ctx.ensure_object(CliState)
    return obj


def client(ctx: typer.Context) -> Client:
    return state(ctx).client()


# --- input --------------------------------------------------------------------


def read_input(path: str | None) -> bytes:
    """The bytes of FILE, or of stdin when FILE is absent or ``-``."""
    if path is None or path == "-":
        return typer.get_binary_stream("stdin").read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}") from exc


def read_text_input(path: str | None) -> str:
    try:
        return read_input(path).decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise typer.BadParameter("the input must be UTF-8 text") from exc


def parse_pairs(pairs: Sequence[str] | None, option: str) -> dict[str, str] | None:
    """``["k=v", ...]`` as a map; ``None`` when the option was not given."""
    if not pairs:
        return None
    out: dict[str, str] = {}
    for pair in pairs:
        split = split_pair(pair)
        if split is None:
            raise typer.BadParameter(f"{option} takes key=value, got {pair!r}")
        out[split[0]] = split[1]
    return out


def decode_b64(value: str, option: str) -> bytes:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise typer.BadParameter(f"{option} must be standard base64") from exc


def decode_hex(value: str, option: str) -> bytes:
    try:
        return bytes.fromhex(value.strip())
    except ValueError as exc:
        raise typer.BadParameter(f"{option} must be hexadecimal") from exc


# --- output -------------------------------------------------------------------


def print_json(value: Any) -> None:
    typer.echo(json_text(value))


def emit(ctx: typer.Context, value: Any, human: Callable[[], None]) -> None:
    """``--json`` prints ``value`` as JSON on stdout; otherwise ``human()`` prints for people."""
    if state(ctx).json:
        print_json(value)
    else:
        human()


def console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


def err_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


_ISO_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")


def when(value: datetime | str | None) -> str:
    """A time as every human line shows it: ``2026-12-05T07:48:51Z`` (UTC, whole seconds)."""
    if value is None:
        return "-"
    if isinstance(value, str):
        text = value
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return text
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def show(value: Any) -> str:
    """One cell of a table (or one value of a field list)."""
    if value is None or value == "":
        return "-"
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_TIME.fullmatch(value)):
        return when(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)


def _longest_word(text: str) -> int:
    return max((len(word) for word in text.split()), default=1)


def fit_columns(columns: Sequence[str], cells: Sequence[Sequence[str]], width: int,
                drop: Sequence[str] = ()) -> tuple[list[int], list[int]]:
    """Which columns fit ``width`` with no word broken, and each one's narrowest width.

    A column is never narrower than its longest word (a key name, a hash, a time),
    so nothing is cut in the middle. When the columns do not fit even so, columns
    are left out: first those named in ``drop``, in that order, then from the right;
    the first column (what the row is about) always stays.
    """
    narrowest = [max([_longest_word(columns[i]), *(_longest_word(row[i]) for row in cells)])
                 for i in range(len(columns))]
    keep = list(range(len(columns)))
    order = [columns.index(c) for c in drop if c in columns]
    order += [i for i in reversed(range(1, len(columns))) if i not in order]
    while order and sum(narrowest[i] + 3 for i in keep) + 1 > width:
        keep.remove(order.pop(0))
    return keep, narrowest


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None,
          *, markup: bool = False, drop: Sequence[str] = ()) -> None:
    """Print rows that read at any width down to 80 columns (the width of a pipe).

    Cells are plain text unless ``markup`` (then the caller escaped them): values
    come from the server (key names, owners, descriptions), and read as Rich
    markup, an owner like ``[red]...`` would restyle or hide what is printed.
    Columns that do not fit are left out (see ``fit_columns``) and named under the
    table; ``--json`` always has them all.
    """
    from rich.table import Table
    from rich.text import Text

    texts = [[Text.from_markup(show(c)) if markup else Text(show(c)) for c in row]
             for row in rows]
    out = console()
    keep, narrowest = fit_columns(columns, [[t.plain for t in row] for row in texts],
                                  out.width, drop)
    left_out = [columns[i] for i in range(len(columns)) if i not in keep]
    grid = Table(title=title, header_style="bold", caption=(
        f"not shown at this width: {', '.join(left_out)} (--json has every field)"
        if left_out else None))
    for i in keep:
        grid.add_column(columns[i], min_width=narrowest[i], overflow="fold")
    for row in texts:
        grid.add_row(*(row[i] for i in keep))
    out.print(grid)


def fields_table(pairs: Iterable[tuple[str, Any]], title: str | None = None) -> None:
    """``name  value`` lines; values wrap between words, and a long one stays whole.

    A hash, token or ciphertext is one word: it is printed on one line even past
    the terminal's edge, so copying it from the screen gives it whole.
    """
    rows = [(name, show(value)) for name, value in pairs]
    name_width = max((len(name) for name, _ in rows), default=0)
    room = max(20, shutil.get_terminal_size((80, 24)).columns - name_width - 2)
    lines = [title] if title else []
    for name, text in rows:
        wrapped = textwrap.wrap(text, room, break_long_words=False,
                                break_on_hyphens=False) or ["-"]
        lines.append(f"{name:<{name_width}}  {wrapped[0]}")
        lines.extend(f"{'':<{name_width}}  {more}" for more in wrapped[1:])
    typer.echo("\n".join(lines))


def write_bytes(data: bytes, out: Path | None = None) -> None:
    """Raw bytes to ``out`` or to stdout, untouched (no newline added)."""
    if out is not None:
        out.write_bytes(data)
        return
    stream = typer.get_binary_stream("stdout")
    stream.write(data)
    stream.flush()


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr; ``raise fail(...)`` to stop."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def stdin_is_tty() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def read_share(path: str | None, what: str = "Unseal share") -> str:
    """A share from a file, or stdin (typed hidden at a terminal); never from the server."""
    if path is not None and path != "-":
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise typer.BadParameter(f"cannot read {path}: {exc.strerror}") from exc
    elif stdin_is_tty():
        text = typer.prompt(what, hide_input=True)
    else:
        text = typer.get_text_stream("stdin").readline()
    text = text.strip()
    if not text:
        raise typer.BadParameter("no share given")
    return text
