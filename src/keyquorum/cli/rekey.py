"""``keyquorum operator rekey init|submit|status|cancel``: replace every share with a quorum.

``init`` (an operator with ``sys:seal``) starts the ceremony with one plan and
shows the key each new share will be sealed to; each custodian then runs
``submit`` with the nonce and their current share, after checking that their own
fingerprint is listed. The submission that reaches the quorum prints only the
sealed shares (no share is ever shown in the clear); each custodian opens theirs
with ``keyquorum custodian decrypt-share``. The old shares stop working at once,
and the root key is rotated.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.panel import Panel
from rich.text import Text

from ..client import RekeyStatus
from ._common import client, console, emit, fields_table, read_share
from .custodian_keys import CustodianKeyOpt, given_keys, show_sealed_shares

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
    for recipient in status.recipients:  # each custodian checks their own fingerprint
        typer.echo(f"new share for {recipient.get('custodian')} sealed to "
                   f"{recipient.get('fingerprint')} ({recipient.get('source')})")
    for replaced in status.keys_replaced:
        console().print(Panel(Text(replaced), title="a registered key is REPLACED",
                              border_style="bold yellow"))


def _show_new_shares(status: RekeyStatus) -> None:
    console().print(
        f"Rekey complete (seal generation {status.generation}, new root key). Every old share "
        f"stopped working; any {status.threshold} of the {len(status.encrypted_shares)} new "
        "ones unseal the service. No share is shown here: each is sealed to its custodian.")
    show_sealed_shares(status.encrypted_shares)
    if status.seal_fingerprint:
        typer.echo(f"New seal fingerprint (restore/drill --expect): {status.seal_fingerprint}")
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
    custodian_key: CustodianKeyOpt = None,
) -> None:
    """Start a rekey: new n/k (--shares/--threshold), --replace OLD=NEW, or --reissue.

    Every custodian of the new share set needs a key: registered by themselves
    (`custodian register-key`) or given here with --custodian-key (a newcomer's).
    """
    swap = None
    if replace is not None:
        old, sep, new = replace.partition("=")
        if not sep or not old or not new:
            raise typer.BadParameter("--replace takes OLD=NEW")
        swap = (old, new)
    status = client(ctx).rekey_init(shares=shares, threshold=threshold, custodians=custodian,
                                    force=force, replace=swap, reissue=reissue,
                                    approval_id=approval_id,
                                    custodian_keys=given_keys(custodian_key))
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
