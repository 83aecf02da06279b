"""``keyquorum token``: create, inspect and revoke API tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ._common import client, console, emit, err_console, fail, fields_table, show, stdin_is_tty
from .approvals import ApprovalIdOpt

if TYPE_CHECKING:
    from ..client import TokenRevocation

PolicyOpt = Annotated[list[str], typer.Option(
    "--policy", "-p", help="Policy to attach (repeat).")]
TtlOpt = Annotated[str | None, typer.Option("--ttl", help="Lifetime, e.g. 3600 or 8h.")]
NameOpt = Annotated[str | None, typer.Option("--name", help="A name for the audit log.")]
"""The options of every command that mints a credential (a token, an access key)."""

app = typer.Typer(help="Create, inspect and revoke API tokens.", no_args_is_help=True)


@app.command()
def create(
    ctx: typer.Context,
    policy: PolicyOpt,
    ttl: TtlOpt = None,
    name: NameOpt = None,
    approval_id: ApprovalIdOpt = None,
    orphan: Annotated[bool, typer.Option(
        "--orphan", help="Root token only: the new token is not revoked with this one "
        "(an operator's token that must outlive init's root token).")] = False,
) -> None:
    """Create a token; the token itself is printed once (the accessor names it later)."""
    token = client(ctx).create_token(policy, ttl=ttl, name=name, approval_id=approval_id,
                                     orphan=orphan)

    def human() -> None:
        fields_table([("token", token.token), ("accessor", token.accessor),
                      ("policies", token.policies), ("expires", token.expires_at),
                      ("orphan", token.orphan)])
        err_console().print("[yellow]The token is shown once; store it now.[/yellow]")

    emit(ctx, token, human)


@app.command("self")
def self_(ctx: typer.Context) -> None:
    """Show the identity behind the current token."""
    info = client(ctx).token_self()
    emit(ctx, info, lambda: fields_table([
        ("accessor", info.accessor), ("name", info.name), ("policies", info.policies),
        ("created", info.created_at), ("expires", info.expires_at), ("orphan", info.orphan)]))


@app.command()
def revoke(
    ctx: typer.Context,
    accessor: Annotated[str, typer.Argument(help="The token's accessor.", show_default=False)],
    yes: Annotated[bool, typer.Option(
        "--yes", "-y", help="Also revoke what the token minted without asking.")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Only list what the revocation would revoke.")] = False,
) -> None:
    """Revoke a token by its accessor, and every token and access key it minted.

    What it would take along is listed first (orphan tokens are not: they outlive it);
    revoking more than the token itself needs a yes, typed at a terminal or ``--yes``.
    """
    kq = client(ctx)
    preview = kq.revoke_token(accessor, dry_run=True)
    if dry_run:
        emit(ctx, preview, lambda: _print_revocation(preview))
        return
    if preview.also_revoked and not yes:
        _print_revocation(preview, err=True)
        if not stdin_is_tty():
            raise fail(f"{accessor} minted {_count(preview)} that would be revoked with it; "
                       "nothing was revoked (pass --yes to revoke them all)")
        if not typer.confirm(f"Revoke {accessor} and the {_count(preview)} it minted?",
                             default=False, err=True):
            raise fail("nothing was revoked")
    done = kq.revoke_token(accessor)
    emit(ctx, done, lambda: _print_revocation(done))


def _count(revocation: TokenRevocation) -> str:
    n = len(revocation.also_revoked)
    return f"{n} credential{'s' if n != 1 else ''}"


def _print_revocation(revocation: TokenRevocation, *, err: bool = False) -> None:
    """The revocation, and a table of each credential it took (or would take) along."""
    out = err_console() if err else console()
    verb = "revoked" if revocation.revoked else "would be revoked"
    if not revocation.also_revoked:
        out.print(f"token {revocation.accessor}: {verb}", markup=False)
        return
    out.print(f"token {revocation.accessor}: {verb}, with {_count(revocation)} it minted "
              "(directly or through them):", markup=False)
    rows = [(d.accessor, d.kind, d.name, d.policies) for d in revocation.also_revoked_details]
    rows += [(a, "", None, ()) for a in revocation.also_revoked[len(rows):]]
    for accessor, kind, name, policies in rows:
        out.print(f"  {accessor}  {show(kind)}  {show(name)}  {show(policies)}", markup=False)
