"""``keyquorum token``: create, inspect and revoke API tokens."""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import client, console, emit, err_console, fields_table
from .approvals import ApprovalIdOpt

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
) -> None:
    """Create a token; the token itself is printed once (the accessor names it later)."""
    token = client(ctx).create_token(policy, ttl=ttl, name=name, approval_id=approval_id)

    def human() -> None:
        fields_table([("token", token.token), ("accessor", token.accessor),
                      ("policies", token.policies), ("expires", token.expires_at)])
        err_console().print("[yellow]The token is shown once; store it now.[/yellow]")

    emit(ctx, token, human)


@app.command("self")
def self_(ctx: typer.Context) -> None:
    """Show the identity behind the current token."""
    info = client(ctx).token_self()
    emit(ctx, info, lambda: fields_table([
        ("accessor", info.accessor), ("name", info.name), ("policies", info.policies),
        ("created", info.created_at), ("expires", info.expires_at)]))


@app.command()
def revoke(
    ctx: typer.Context,
    accessor: Annotated[str, typer.Argument(help="The token's accessor.", show_default=False)],
) -> None:
    """Revoke a token by its accessor."""
    client(ctx).revoke_token(accessor)
    emit(ctx, {"accessor": accessor, "revoked": True},
         lambda: console().print(f"token {accessor}: revoked", markup=False))
