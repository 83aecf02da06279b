"""``keyquorum audit``: read and verify the audit log."""

from __future__ import annotations

from itertools import islice
from typing import Annotated

import typer

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
) -> None:
    """List audit records, filtered."""
    found = client(ctx).iter_audit(key=key, identity=identity, operation=operation,
                                   outcome=outcome, since=since, until=until,
                                   page_size=min(limit, 1000))
    records = list(islice(found, limit))
    emit(ctx, {"records": records}, lambda: table(
        ["time", "identity", "operation", "key", "version", "outcome"],
        [(r.time, r.identity, r.operation, r.key, r.key_version,
          f"{r.outcome} ({r.error_code})" if r.error_code else r.outcome) for r in records]))


@app.command()
def verify(ctx: typer.Context) -> None:
    """Check the audit log's hash chain; exit 1 when it is broken."""
    result = client(ctx).verify_audit()

    def human() -> None:
        console().print("[green]audit chain intact[/green]" if result.ok
                        else "[red]audit chain BROKEN[/red]")
        fields_table([("records", result.records), ("first bad", result.first_bad),
                      ("head", result.head)])

    emit(ctx, result, human)
    if not result.ok:
        raise typer.Exit(1)
