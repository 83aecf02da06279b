"""``keyquorum operator backup | restore | drill``: take, rebuild from, and rehearse backups.

``backup`` speaks to the server like every other command. ``restore`` and
``drill`` work on files alone, with no server: they open the backup through
its seal set with the shares or passphrase given here, or the automatic seals
of the operator's local recovery config (never seals named by the file), and
refuse a backup whose seal fingerprint is not the pinned one (``--expect``).
The backup modules (and SQLAlchemy) are imported only when those run.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._common import client, console, emit, err_console, fail, fields_table, state, table

if TYPE_CHECKING:
    from keyquorum.seal.seal_set import Unlock

ShareOption = Annotated[list[str] | None, typer.Option(
    "--share", help="An unseal share (repeat). Visible in `ps`: prefer --share-file.",
    show_default=False)]
ShareFileOption = Annotated[list[Path] | None, typer.Option(
    "--share-file", help="A file holding one share per line (repeat).", show_default=False)]
PassphraseFileOption = Annotated[Path | None, typer.Option(
    "--passphrase-file", help="A file holding the passphrase seal's passphrase.",
    show_default=False)]
ExpectOption = Annotated[list[str] | None, typer.Option(
    "--expect", help="The seal fingerprint (kqfp1:...) the backup must belong to, as shown "
    "by `operator init` and `custodian status` (repeat to accept several).",
    show_default=False)]
RecoveryConfigOption = Annotated[Path | None, typer.Option(
    "--recovery-config", help="Local JSON naming the pinned fingerprints (expect) and the "
    "automatic seals (PKCS#11 module, KMS key) to open the backup with; the backup's own "
    "seal parameters are never used.", show_default=False)]


def _read_secret_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise typer.BadParameter(f"cannot read {path}: {reason}") from None


def _unlock(shares: list[str] | None, share_files: list[Path] | None,
            passphrase_file: Path | None, recovery_config: Path | None,
            expect: list[str] | None) -> tuple[Unlock, tuple[str, ...]]:
    """What opens the backup, and the fingerprints it must have (flags and config joined)."""
    from keyquorum.backup.recovery_config import RecoveryConfig, load_recovery_config
    from keyquorum.seal.fingerprint import check_fingerprint
    from keyquorum.seal.seal_set import Unlock

    try:
        local = (load_recovery_config(recovery_config) if recovery_config is not None
                 else RecoveryConfig())
        pinned = tuple(check_fingerprint(f) for f in expect or ()) + local.expect
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None

    given = [s.strip() for s in shares or [] if s.strip()]
    for path in share_files or []:
        given += [line.strip() for line in _read_secret_file(path).splitlines() if line.strip()]
    passphrase = None
    if passphrase_file is not None:
        passphrase = _read_secret_file(passphrase_file).rstrip("\r\n")
    return Unlock(shares=tuple(given), passphrase=passphrase, auto_seals=local.seals,
                  trust=local.trust), pinned


def backup(
    ctx: typer.Context,
    out: Annotated[Path, typer.Argument(help="Where to write the backup (created 0600).")],
    segment_size: Annotated[int | None, typer.Option(
        "--segment-size", help="Plaintext bytes per sealed segment (default 1 MiB).",
        hidden=True)] = None,
) -> None:
    """Download an encrypted backup of the whole service (opens only through the seal set)."""
    from keyquorum.backup.format import read_header
    from keyquorum.backup.pin import seal_fingerprint_of

    kq = client(ctx)
    # mkstemp: 0600 from the start; renamed into place only once the download is whole.
    fd, partial = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial",
                                   dir=out.parent if str(out.parent) else ".")
    try:
        with os.fdopen(fd, "wb") as stream:
            if err_console().is_terminal and not state(ctx).json:
                written = _download_with_progress(kq, stream, segment_size)
            else:
                written = kq.backup(stream, segment_size=segment_size)
            stream.flush()
            os.fsync(stream.fileno())
        with open(partial, "rb") as stream:
            header, _raw = read_header(stream)
        os.replace(partial, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
    public = header.public
    summary = {"out": str(out), "bytes": written, "backup_id": public.get("backup_id"),
               "created_at": public.get("created_at"), "canaries": public.get("canaries"),
               "seals": sorted(public.get("seals", {})), "tables": public.get("tables"),
               "seal_fingerprint": seal_fingerprint_of(header)}
    emit(ctx, summary, lambda: fields_table(
        [(name, summary[name]) for name in ("out", "bytes", "backup_id", "created_at",
                                            "canaries", "seals", "seal_fingerprint")],
        title="backup written"))


def _download_with_progress(kq: Any, stream: Any, segment_size: int | None) -> int:
    from rich.progress import DownloadColumn, Progress, SpinnerColumn, TransferSpeedColumn

    with Progress(SpinnerColumn(), "{task.description}", DownloadColumn(),
                  TransferSpeedColumn(), console=err_console(), transient=True) as bar:
        task = bar.add_task("backup", total=None)
        return int(kq.backup(stream, segment_size=segment_size,
                             progress=lambda n: bar.advance(task, n)))


def restore(
    ctx: typer.Context,
    backup_file: Annotated[Path, typer.Argument(metavar="IN", help="The backup file.")],
    data_dir: Annotated[Path | None, typer.Option(
        "--data-dir", help="A new or empty directory for the restored store.")] = None,
    database: Annotated[str | None, typer.Option(
        "--database", help="Or an EMPTY PostgreSQL database (postgresql://USER@HOST/DB; "
        "password with --database-password-file or KEYQUORUM_DATABASE_PASSWORD): every "
        "row compared and the audit chain verified before it reports success.")] = None,
    database_password_file: Annotated[Path | None, typer.Option(
        "--database-password-file", help="File holding the database's password.")] = None,
    share: ShareOption = None,
    share_file: ShareFileOption = None,
    passphrase_file: PassphraseFileOption = None,
    recovery_config: RecoveryConfigOption = None,
    expect: ExpectOption = None,
) -> None:
    """Rebuild a store from a backup, offline; nothing is written unless all of it checks out."""
    from keyquorum.backup.restore import restore as run_restore
    from keyquorum.backup.restore_database import restore_into_database
    from keyquorum.errors import KeyquorumError

    if (data_dir is None) == (database is None):
        raise fail("give one of --data-dir or --database")
    unlock, pinned = _unlock(share, share_file, passphrase_file, recovery_config, expect)
    checked: dict[str, object] = {}
    try:
        if database is not None:
            done = restore_into_database(backup_file, database, unlock,
                                         password_file=database_password_file,
                                         expect=pinned)
            result = done.restored
            checked = {"database": done.moved.target, "rows_compared": done.moved.rows,
                       "audit_records_verified": done.moved.audit.records,
                       "checkpoint_signatures": done.moved.checkpoint_signatures}
        else:
            assert data_dir is not None
            result = run_restore(backup_file, data_dir, unlock, expect=pinned)
    except KeyquorumError as exc:
        raise fail(f"{exc.code}: {exc.message}") from None
    where = {"database": checked.pop("database")} if checked \
        else {"data_dir": str(result.data_dir)}
    summary = {**where, "backup_id": result.backup_id,
               "created_at": result.created_at, "schema_revision": result.schema_revision,
               "rows": sum(result.tables.values()), "tables": result.tables,
               "audit_seq": result.audit_seq, "seal_fingerprint": result.seal_fingerprint,
               "pinned": bool(pinned), **checked}

    def human() -> None:
        fields_table([(k, summary[k]) for k in (*where, "backup_id", "created_at",
                                                "schema_revision", "rows", "audit_seq",
                                                "seal_fingerprint", "pinned", *checked)],
                     title="restored")
        console().print("Start a server on it: it is sealed and opens with the same seals.")

    emit(ctx, summary, human)


def drill(
    ctx: typer.Context,
    backup_file: Annotated[Path, typer.Option("--backup", help="The backup to rehearse with.")],
    share: ShareOption = None,
    share_file: ShareFileOption = None,
    passphrase_file: PassphraseFileOption = None,
    recovery_config: RecoveryConfigOption = None,
    expect: ExpectOption = None,
) -> None:
    """Rehearse recovery: restore into scratch, unseal, check every canary (exit 1 on fail)."""
    from keyquorum.backup.drill import run_drill

    unlock, pinned = _unlock(share, share_file, passphrase_file, recovery_config, expect)
    report = run_drill(backup_file, unlock, expect=pinned)

    def human() -> None:
        table(["step", "result", "seconds", "detail"],
              [(s.name, "pass" if s.ok else "FAIL", f"{s.seconds:.3f}", s.detail)
               for s in report.steps], title=f"recovery drill: {backup_file}")
        if report.canaries:
            table(["key", "version", "check", "result", "error"],
                  [(c.key, c.version, c.kind, "pass" if c.ok else "FAIL", c.error)
                   for c in report.canaries], title="canaries")
        if report.ok and not report.pinned:
            console().print("not pinned: give --expect with the seal fingerprint from "
                            "`custodian status` to check the backup is your store's")
        console().print("[green]PASS[/green]" if report.ok else "[red]FAIL[/red]")

    emit(ctx, report.to_json(), human)
    if not report.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the three commands to the ``operator`` group."""
    app.command()(backup)
    app.command()(restore)
    app.command()(drill)
