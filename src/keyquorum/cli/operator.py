"""``keyquorum operator``: initialize, unseal, seal, and show the seal status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.panel import Panel

from ..client import EncryptedShare, SealStatus
from . import seals
from ._common import client, console, emit, err_console, fields_table, read_share
from .custodian_keys import CustodianKeyOpt, given_keys, show_sealed_shares

app = typer.Typer(help="Initialize, unseal and seal the service.", no_args_is_help=True)


def _show_status(status: SealStatus) -> None:
    if not status.initialized:
        headline = "[yellow]not initialized[/yellow]"
    elif status.sealed:
        headline = f"[red]sealed[/red] (unseal progress {status.progress}/{status.threshold})"
    else:
        headline = "[green]unsealed[/green]"
    console().print(headline)
    fields_table([("initialized", status.initialized), ("sealed", status.sealed),
                  ("threshold", status.threshold), ("shares", status.shares),
                  ("progress", status.progress),
                  ("seals", [s.get("type", s) if isinstance(s, dict) else s
                             for s in status.seals])])
    if status.sealed and status.nonce:  # only share submitters see it
        console().print(f"unseal round nonce (for --reset --nonce): {status.nonce}")


@app.command()
def init(
    ctx: typer.Context,
    shares: Annotated[int, typer.Option("--shares", min=1, max=255,
                                        help="How many unseal shares to make.")] = 5,
    threshold: Annotated[int, typer.Option("--threshold", min=1, max=255,
                                           help="How many shares unseal the service.")] = 3,
    custodian: Annotated[list[str] | None, typer.Option(
        "--custodian", help="Name of a share's custodian, in share order (repeat).")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Allow threshold = shares (then losing ANY share locks the data).")
    ] = False,
    commitments_out: Annotated[Path | None, typer.Option(
        "--commitments-out", help="Write the public commitments (JSON) here, for "
        "`keyquorum share check` on the custodians' own machines.")] = None,
    custodian_key: CustodianKeyOpt = None,
) -> None:
    """Initialize the service: prints the root token ONCE, and the unseal shares, or with
    --custodian-key for every custodian only their sealed envelopes."""
    if threshold > shares:
        raise typer.BadParameter("threshold cannot be more than shares", param_hint="--threshold")
    if custodian and len(custodian) != shares:
        raise typer.BadParameter(f"give one --custodian per share ({shares})")
    result = client(ctx).init(shares, threshold, custodian or None, force=force,
                              custodian_keys=given_keys(custodian_key))
    if commitments_out is not None:  # public values: safe to copy to every custodian
        commitments_out.write_text(json.dumps({"commitments": list(result.commitments)}))

    def human() -> None:
        if result.encrypted_shares:
            _show_sealed(result.root_token, result.encrypted_shares)
        else:
            _show_plain(result.shares, result.root_token, custodian or [])
        if result.seal_fingerprint:  # public: write it down with the backups' location
            typer.echo(f"Seal fingerprint (restore/drill --expect): {result.seal_fingerprint}")

    def _show_plain(shares_made: tuple[str, ...], root_token: str, names: list[str]) -> None:
        err_console().print(Panel(
            f"These {shares} unseal shares and the root token are shown ONCE and never again.\n"
            f"Any {threshold} of the shares unseal the service; fewer reveal nothing.\n"
            "Hand each share to its custodian now and store it offline. Anyone holding "
            f"{threshold} shares holds every key. Revoke the root token once you have "
            "created operator tokens.",
            title="WARNING: SECRET MATERIAL", border_style="bold red"))
        for i, share in enumerate(shares_made):
            who = f" ({names[i]})" if i < len(names) else ""
            typer.echo(f"Unseal share {i + 1}{who}: {share}")
        typer.echo(f"Root token: {root_token}")

    emit(ctx, result, human)


def _show_sealed(root_token: str, sealed: tuple[EncryptedShare, ...]) -> None:
    err_console().print(Panel(
        "The root token is shown ONCE and never again; revoke it once you have created "
        "operator tokens. The unseal shares are NOT shown: each is sealed to its custodian's "
        "key, and only that custodian can open it.",
        title="WARNING: SECRET MATERIAL", border_style="bold red"))
    typer.echo(f"Root token: {root_token}")
    show_sealed_shares(sealed)


@app.command()
def unseal(
    ctx: typer.Context,
    share: Annotated[str | None, typer.Argument(
        help="One unseal share; omit to type it hidden, or pipe it on stdin.",
        show_default=False)] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Discard the shares given so far.")
                     ] = False,
    nonce: Annotated[str | None, typer.Option(
        "--nonce", help="With --reset: the nonce printed when shares were submitted.")
                     ] = None,
    passphrase: Annotated[bool, typer.Option(
        "--passphrase", help="Unseal with a passphrase seal (typed hidden, or on stdin).")
                          ] = False,
    auto: Annotated[bool, typer.Option(
        "--auto", help="Try the HSM and KMS seals again now.")] = False,
) -> None:
    """Submit one unseal share (repeat with other custodians until the threshold)."""
    kq = client(ctx)
    if reset:
        status = kq.unseal_reset(nonce)
    elif passphrase or auto:
        status = seals.unseal_without_shares(kq, passphrase=passphrase, auto=auto)
    else:
        share = read_share(None) if share is None else share.strip()
        if not share:
            raise typer.BadParameter("no share given")
        status = kq.unseal(share)
    emit(ctx, status, lambda: _show_status(status))


@app.command()
def seal(ctx: typer.Context) -> None:
    """Seal the service now: every key leaves memory until the next unseal."""
    status = client(ctx).seal()
    emit(ctx, status, lambda: _show_status(status))


@app.command()
def status(ctx: typer.Context) -> None:
    """Show whether the service is initialized and sealed."""
    result = client(ctx).seal_status()
    emit(ctx, result, lambda: _show_status(result))
