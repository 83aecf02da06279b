"""``keyquorum operator rekey init|submit|status|cancel``: replace every share with a quorum.

``init`` (an operator with ``sys:seal``) starts the ceremony with one plan;
each custodian then runs ``submit`` with the nonce and their current share. The
submission that reaches the quorum prints the NEW shares once, in a loud panel;
the old shares stop working at that moment.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.panel import Panel
from rich.text import Text

from ..client import RekeyStatus
from ._common import client, console, emit, err_console, fields_table, read_share

app = typer.Typer(help="Rekey: a quorum of current shares issues a new set; old ones stop "
                       "working.", no_args_is_help=True)


def _show(status: RekeyStatus) -> None:
    if status.complete:
        _show_new_shares(status)
        return
    if not status.started:
        console().print("no rekey in progress" + (" (cancelled)" if status.cancelled else ""))
        return
    console().print(f"rekey in progress: {status.progress}/{status.required} current shares")
    fields_table([("nonce", status.nonce), ("plan", status.kind),
                  ("new shares", status.new_shares), ("new threshold", status.new_threshold),
                  ("new custodians", list(status.new_custodians)),
                  ("replace", status.replace), ("submitted", list(status.submitted)),
                  ("expires", status.expires_at)])


def _show_new_shares(status: RekeyStatus) -> None:
    err_console().print(Panel(
        f"Rekey complete (seal generation {status.generation}). These {len(status.shares)} NEW "
        "unseal shares are shown ONCE and never again; every old share stopped working.\n"
        f"Any {status.threshold} of them unseal the service. Hand each to its custodian now; "
        "each should run `keyquorum custodian prove` with it.",
        title="WARNING: SECRET MATERIAL", border_style="bold red"))
    for i, share in enumerate(status.shares):
        who = status.custodians[i] if i < len(status.custodians) else f"share-{i + 1}"
        typer.echo(f"New unseal share {i + 1} ({who}): {share}")
    typer.echo("Commitments (public; for `keyquorum share check`): "
               + " ".join(status.commitments))


@app.command("init")
def start(
    ctx: typer.Context,
    shares: Annotated[int | None, typer.Option("--shares", help="New number of shares.")] = None,
    threshold: Annotated[int | None, typer.Option("--threshold", help="New threshold.")] = None,
    custodian: Annotated[list[str] | None, typer.Option(
        "--custodian", help="New custodian names, in share order (repeat).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Allow threshold = shares.")] = False,
    replace: Annotated[str | None, typer.Option(
        "--replace", help="OLD=NEW: a new custodian instead of OLD (every share is reissued).")
    ] = None,
    reissue: Annotated[bool, typer.Option("--reissue", help="Fresh shares, same custodians.")
                       ] = False,
    approval_id: Annotated[str | None, typer.Option(
        "--approval-id", help="The approved request, under dual control.")] = None,
) -> None:
    """Start a rekey: new n/k (--shares/--threshold), --replace OLD=NEW, or --reissue."""
    swap = None
    if replace is not None:
        old, sep, new = replace.partition("=")
        if not sep or not old or not new:
            raise typer.BadParameter("--replace takes OLD=NEW")
        swap = (old, new)
    status = client(ctx).rekey_init(shares=shares, threshold=threshold, custodians=custodian,
                                    force=force, replace=swap, reissue=reissue,
                                    approval_id=approval_id)
    emit(ctx, status, lambda: _show(status))


@app.command()
def submit(
    ctx: typer.Context,
    nonce: Annotated[str | None, typer.Option(
        "--nonce", help="The ceremony's nonce (default: the one in progress).")] = None,
    share_file: Annotated[str | None, typer.Option(
        "--share-file", help="File holding your current share (default: stdin).")] = None,
) -> None:
    """Submit your CURRENT share to the rekey in progress."""
    kq = client(ctx)
    if nonce is None:
        current = kq.rekey_status()
        if not current.started or current.nonce is None:
            raise typer.BadParameter("no rekey is in progress")
        nonce = current.nonce
    status = kq.rekey_submit(nonce, read_share(share_file, "Current unseal share"))
    emit(ctx, status, lambda: _show(status))


@app.command()
def status(ctx: typer.Context) -> None:
    """Show the rekey in progress (plan, progress, expiry)."""
    result = client(ctx).rekey_status()
    emit(ctx, result, lambda: _show(result))


@app.command()
def cancel(ctx: typer.Context) -> None:
    """Cancel the rekey in progress; the shares submitted to it are deleted."""
    result = client(ctx).rekey_cancel()
    emit(ctx, result, lambda: console().print(Text("rekey cancelled")))
