"""``keyquorum operator migrate-storage``: move a SQLite store onto PostgreSQL, offline.

Like ``restore`` it works on the store itself, with no server (and refuses while one
runs on the data dir). The migration module, SQLAlchemy and psycopg are imported only
when it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._common import console, emit, err_console, fail, fields_table, table

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


class _Bar:
    """Draws the move's phases (copy, compare, audit chain) as Rich progress bars."""

    def __init__(self, bars: Progress) -> None:
        self._bars = bars
        self._task: TaskID | None = None
        self._total = 0

    def phase(self, name: str, total: int) -> None:
        if self._task is not None:  # the phase before is done
            self._bars.update(self._task, completed=self._total)
        self._total = max(total, 1)
        self._task = self._bars.add_task(name, total=self._total)

    def advance(self, rows: int) -> None:
        if self._task is not None:
            self._bars.advance(self._task, rows)


def migrate_storage(
    ctx: typer.Context,
    source: Annotated[Path, typer.Option(
        "--from", help="The data dir of the SQLite store (no server may run on it).",
        exists=True, file_okay=False)],
    target: Annotated[str, typer.Option(
        "--to", help="postgresql://USER@HOST:PORT/DBNAME of an EMPTY database. Give the "
        "password with --database-password-file or KEYQUORUM_DATABASE_PASSWORD, not in "
        "the URL.")],
    database_password_file: Annotated[Path | None, typer.Option(
        "--database-password-file", help="File holding the target database's password.",
        exists=True, dir_okay=False)] = None,
    audit_public_key: Annotated[Path | None, typer.Option(
        "--audit-public-key", help="The audit signing key's public PEM, as `keyquorum audit "
        "public-key` printed it: the stored checkpoints' signatures are checked too.",
        exists=True, dir_okay=False)] = None,
) -> None:
    """Move a SQLite store into an empty PostgreSQL database; verified before it says so."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from keyquorum.backup.migrate_storage import MigrationError
    from keyquorum.backup.migrate_storage import migrate_storage as run

    pem = audit_public_key.read_text() if audit_public_key is not None else None
    try:
        with Progress("{task.description}", BarColumn(), MofNCompleteColumn(), "rows",
                      TimeElapsedColumn(), console=err_console(), transient=True) as bars:
            result = run(source, target, password_file=database_password_file,
                         audit_public_key=pem, progress=_Bar(bars))
    except MigrationError as exc:
        raise fail(f"migrate-storage: {exc}; the target was left as it was") from None
    summary: dict[str, Any] = result.to_json()

    def human() -> None:
        fields_table([("from", summary["source"]), ("to", summary["target"]),
                      ("rows", summary["rows"]),
                      ("audit records", summary["audit"]["records"]),
                      ("audit chain", "verified" if summary["audit"]["ok"] else "FAILED"),
                      ("checkpoint signatures",
                       "checked" if result.checkpoint_signatures else "not checked "
                       "(give --audit-public-key)"),
                      ("seconds", summary["seconds"])], title="moved and verified")
        table(["table", "rows"], sorted(result.tables.items()))
        console().print(
            "Start the server on it (`keyquorum server --database URL ...`): it is sealed and "
            f"opens with the same seals. Keep {source} until you have checked it.")

    emit(ctx, summary, human)


def register(app: typer.Typer) -> None:
    """Add ``migrate-storage`` to the ``operator`` group."""
    app.command("migrate-storage")(migrate_storage)
