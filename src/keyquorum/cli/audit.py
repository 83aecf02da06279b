"""``keyquorum audit``: read, export and verify the audit log (live or offline)."""

from __future__ import annotations

import dataclasses
import json
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from ..audit.checkpoints import Checkpoint
from ._common import client, console, emit, fields_table, table

app = typer.Typer(help="Read and verify the audit log.", no_args_is_help=True)


@app.command("list")
def list_(
    ctx: typer.Context,
    key: Annotated[str | None, typer.Option("--key", help="Records about this key.")] = None,
    identity: Annotated[str | None, typer.Option("--identity")] = None,
    operation: Annotated[str | None, typer.Option("--operation", help="e.g. decrypt.")] = None,
    outcome: Annotated[str | None, typer.Option("--outcome", help="ok, denied or error.")
                       ] = None,
    since: Annotated[str | None, typer.Option("--since", help="RFC 3339 time.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="RFC 3339 time.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many records.")
                     ] = 100,
    context: Annotated[str | None, typer.Option(
        "--context", help="Records whose context holds this hash (see `audit hash`).")] = None,
) -> None:
    """List audit records, filtered."""
    found = client(ctx).iter_audit(key=key, identity=identity, operation=operation,
                                   outcome=outcome, since=since, until=until,
                                   page_size=min(limit, 1000), context=context)
    records = list(islice(found, limit))
    emit(ctx, {"records": records}, lambda: table(
        ["time", "identity", "operation", "key", "version", "outcome"],
        [(r.time, r.identity, r.operation, r.key, r.key_version,
          f"{r.outcome} ({r.error_code})" if r.error_code else r.outcome) for r in records]))


def _load_checkpoints(paths: list[Path]) -> list[Checkpoint]:
    """Checkpoints kept outside: files holding one checkpoint object, or export lines."""
    # Imported here: the audit package pulls in SQLAlchemy, which every other CLI
    # command would otherwise pay for at start-up.
    from ..audit.checkpoints import Checkpoint
    found: list[Checkpoint] = []
    for path in paths:
        try:
            text = path.read_text()
        except OSError as exc:
            raise typer.BadParameter(f"cannot read {path}: {exc.strerror}") from None
        try:
            try:  # one JSON document (as `audit checkpoint --json` prints), else JSON lines
                items = [json.loads(text)]
            except ValueError:
                items = [json.loads(line) for line in text.splitlines() if line.strip()]
            # An export may be given whole: its checkpoint lines are the ones taken.
            found.extend(Checkpoint.from_line(item) for item in items
                         if isinstance(item, dict) and item.get("type", "checkpoint")
                         == "checkpoint")
        except ValueError as exc:
            raise typer.BadParameter(f"{path}: not a checkpoint ({exc})") from None
    return found


def _show_report(ctx: typer.Context, result: dict[str, Any]) -> None:
    def human() -> None:
        console().print("[green]audit chain intact[/green]" if result["ok"]
                        else "[red]audit chain BROKEN[/red]")
        bad = result.get("first_bad")
        head = result.get("head") or {}
        fields_table([
            ("records", result["records"]),
            ("first bad record", f"{bad['id']}: {bad['reason']}" if bad else "-"),
            ("head", f"{head.get('seq')} {head.get('chain_hash')}"),
            ("signed checkpoints", result.get("checkpoints")),
            ("last good checkpoint", result.get("last_checkpoint")),
            ("records after it (chain only)", result.get("unsigned_tail")),
        ])

    emit(ctx, result, human)
    if not result["ok"]:
        raise typer.Exit(1)


@app.command()
def verify(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Option(
        "--file", help="Check this export (or file sink) offline, with no server.")] = None,
    public_key: Annotated[Path | None, typer.Option(
        "--public-key", help="The audit public key (PEM) you kept; needed with --file.")
    ] = None,
    checkpoint: Annotated[list[Path] | None, typer.Option(
        "--checkpoint", help="A checkpoint kept outside (JSON); repeatable.")] = None,
) -> None:
    """Check the audit chain and its signed checkpoints; exit 1 on any fault.

    Without --file, the server checks its live log. With --file, nothing is asked
    of any server: the chain, the checkpoints' signatures and any checkpoint you
    kept are checked against the public key you give.
    """
    from ..audit.export import ExportFormatError
    from ..audit.offline import verify_file

    trusted = _load_checkpoints(checkpoint or [])
    if file is None:
        if public_key is not None:
            raise typer.BadParameter("--public-key goes with --file")
        result = client(ctx).verify_audit([c.to_json() for c in trusted])
        _show_report(ctx, dataclasses.asdict(result))
        return
    if public_key is None:
        raise typer.BadParameter("--file needs --public-key (the key you kept, not the "
                                 "file's own copy)")
    try:
        pem = public_key.read_text()
        report = verify_file(file, pem, trusted)
    except OSError as exc:
        raise typer.BadParameter(f"cannot read: {exc.strerror}") from None
    except ExportFormatError as exc:
        typer.echo(f"error: invalid_export: {exc}", err=True)
        raise typer.Exit(1) from None
    except ValueError as exc:  # a PEM that is not an Ed25519 public key
        typer.echo(f"error: invalid_public_key: {exc}", err=True)
        raise typer.Exit(1) from None
    _show_report(ctx, report.to_json())


@app.command()
def export(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Where to write the JSON lines.")],
    public_key_out: Annotated[Path | None, typer.Option(
        "--public-key-out", help="Also write the audit public key (PEM) here.")] = None,
) -> None:
    """Export the whole audit chain with its signed checkpoints, to verify offline."""
    kq = client(ctx)
    partial = out.with_name(out.name + ".partial")
    with partial.open("wb") as stream:
        written = kq.export_audit(stream)
    partial.replace(out)  # never leave a half export under the final name
    if public_key_out is not None:
        public_key_out.write_text(kq.audit_public_key()["public_key_pem"])
    emit(ctx, {"out": str(out), "bytes": written,
               "public_key_out": None if public_key_out is None else str(public_key_out)},
         lambda: console().print(f"wrote {written} bytes to {out}"))


@app.command("hash")
def hash_(ctx: typer.Context, value: Annotated[str, typer.Argument(
        help="A context name or value to search the log for.")]) -> None:
    """Print the HMAC a context name or value is stored as (use with list --context)."""
    digest = client(ctx).audit_hash(value)
    emit(ctx, {"hash": digest}, lambda: typer.echo(digest))


@app.command("checkpoint")
def checkpoint_(ctx: typer.Context) -> None:
    """Sign the chain head now; keep the JSON outside to check later exports against."""
    made = client(ctx).audit_checkpoint()
    emit(ctx, made, lambda: typer.echo(json.dumps(made)))


@app.command("public-key")
def public_key_(ctx: typer.Context) -> None:
    """Print the audit checkpoint signing key (PEM)."""
    answer = client(ctx).audit_public_key()
    emit(ctx, answer, lambda: typer.echo(answer["public_key_pem"], nl=False))
