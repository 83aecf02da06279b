"""``keyquorum access-key``: AWS SigV4 credentials for the KMS API (create, list, revoke).

``create`` prints ``export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...`` lines on
stdout, so ``eval "$(keyquorum access-key create --policy P)"`` sets up a shell for
``aws kms`` / boto3; ``--json`` prints the whole answer instead.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ._common import client, console, emit, err_console, table
from .approvals import ApprovalIdOpt
from .tokens import NameOpt, PolicyOpt, TtlOpt

app = typer.Typer(help="AWS-style access keys for the KMS API (SigV4).",
                  no_args_is_help=True)


@app.command()
def create(
    ctx: typer.Context,
    policy: PolicyOpt,
    ttl: TtlOpt = None,
    name: NameOpt = None,
    approval_id: ApprovalIdOpt = None,
) -> None:
    """Create an access key; its secret is printed once, as lines a shell can eval."""
    made = client(ctx).create_access_key(policy, ttl=ttl, name=name, approval_id=approval_id)
    value = {"access_key_id": made.access_key_id, "secret_access_key": made.secret_access_key,
             "accessor": made.accessor, "name": made.name, "policies": list(made.policies),
             "expires_at": made.expires_at}

    def human() -> None:
        sys.stdout.write(made.shell_exports())
        err_console().print(f"accessor {made.accessor}; the secret is shown once, store it "
                            "now", markup=False)

    emit(ctx, value, human)


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """List access keys that are not revoked (never their secrets)."""
    found = client(ctx).list_access_keys()
    emit(ctx, found, lambda: table(
        ["access key id", "accessor", "name", "policies", "expires"],
        [(k.access_key_id, k.accessor, k.name, ", ".join(k.policies), k.expires_at)
         for k in found]))


@app.command()
def revoke(
    ctx: typer.Context,
    accessor: Annotated[str, typer.Argument(help="The access key's accessor.",
                                            show_default=False)],
) -> None:
    """Revoke an access key by its accessor."""
    client(ctx).revoke_access_key(accessor)
    emit(ctx, {"accessor": accessor, "revoked": True},
         lambda: console().print(f"access key {accessor}: revoked", markup=False))
