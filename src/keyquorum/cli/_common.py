"""What every CLI command shares: the global options, the client, input and output.

Rich and the SDK are imported where they are first used, not here: ``encrypt`` in a
shell loop should not pay for table rendering it never does (``bench/cli.py``).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from ..client import Client


@dataclass
class CliState:
    """The global options, and the one client built from them on first use."""

    addr: str | None = None
    token: str | None = None
    json: bool = False
    verify: bool | str = True
    _client: Client | None = None

    def __repr__(self) -> str:
        return f"CliState(addr={self.addr!r}, json={self.json})"  # never the token

    def client(self) -> Client:
        if self._client is None:
            from ..client import Client

            self._client = Client(self.addr, self.resolved_token(), verify=self.verify)
        return self._client

    def resolved_token(self) -> str | None:
        """``--token``, else ``$KEYQUORUM_TOKEN`` (both in ``token``), else the token file."""
        if self.token:
            return self.token
        from ..token_file import TokenFileError, read_token

        try:
            return read_token()
        except TokenFileError as exc:
            raise fail(f"token_file: {exc}") from None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


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
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{option} takes key=value, got {pair!r}")
        out[name] = value
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


def jsonable(value: Any) -> Any:
    """A dataclass answer as plain JSON values: bytes as base64, times as RFC 3339."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def print_json(value: Any) -> None:
    typer.echo(json.dumps(jsonable(value), indent=2, sort_keys=False))


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


def show(value: Any) -> str:
    """One cell of a table."""
    if value is None or value == "":
        return "-"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds").replace("+00:00", "Z")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None,
          *, markup: bool = False) -> None:
    """Print rows; cells are plain text unless ``markup`` (then the caller escaped them).

    Values come from the server (key names, owners, descriptions): read as Rich
    markup, an owner like ``[red]...`` would restyle or hide what is printed.
    """
    from rich.table import Table
    from rich.text import Text

    grid = Table(title=title, header_style="bold")
    for column in columns:
        grid.add_column(column, overflow="fold")  # fold, never cut: cells get copied
    for row in rows:
        grid.add_row(*(show(cell) if markup else Text(show(cell)) for cell in row))
    console().print(grid)


def fields_table(pairs: Iterable[tuple[str, Any]], title: str | None = None) -> None:
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")  # long ciphertexts wrap whole instead of being cut
    for name, value in pairs:
        grid.add_row(name, Text(show(value)))
    out = console()
    if title:
        out.print(f"[bold]{title}[/bold]")
    out.print(grid)


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
