"""``keyquorum key``: create, inspect and manage the lifecycle of keys."""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Annotated

import typer

from ..client import Key
from ._common import client, console, emit, fields_table, parse_pairs, table, when
from .approvals import ApprovalIdOpt

app = typer.Typer(help="Create, inspect and manage keys.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="Key name, e.g. payments/cards.",
                                        show_default=False)]
VersionOpt = Annotated[int | None, typer.Option(
    "--version", min=1, help="One version instead of the whole key.")]
LabelOpt = Annotated[list[str] | None, typer.Option("--label", help="key=value (repeat).")]


def show_key(key: Key) -> None:
    fields_table([
        ("name", key.name), ("id", key.id), ("spec", key.spec), ("purpose", key.purpose),
        ("state", key.state), ("primary version", key.primary_version),
        ("min decrypt version", key.min_decrypt_version), ("owner", key.owner),
        ("description", key.description), ("labels", key.labels), ("origin", key.origin),
        ("exportable", key.exportable), ("rotation period", key.rotation_period),
        ("next rotation", key.next_rotation),
        ("crypto-period", key.crypto_period if key.crypto_period is not None else "spec default"),
        ("usage limit", key.usage_limit),
        ("deletion window (days)", key.deletion_window_days), ("destroy at", key.destroy_at),
        ("created", key.created_at), ("created by", key.created_by),
        ("last used", key.last_used_at),
    ], title=f"key {key.name}")
    if key.versions:
        table(["version", "state", "created", "protect count", "last used"],
              [(("* " if v.version == key.primary_version else "") + str(v.version), v.state,
                v.created_at, v.protect_count, v.last_used_at) for v in key.versions],
              title="versions (* primary)")


def _answer(ctx: typer.Context, key: Key, message: str) -> None:
    emit(ctx, key, lambda: console().print(message, highlight=False, markup=False))


@app.command()
def create(
    ctx: typer.Context,
    name: NameArg,
    spec: Annotated[str, typer.Option("--spec", help="e.g. aes-256-gcm, ed25519, ml-kem-768.")],
    purpose: Annotated[str | None, typer.Option(
        "--purpose", help="encrypt, sign, mac, kem or agree (default: from the spec).")] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    owner: Annotated[str | None, typer.Option("--owner")] = None,
    label: LabelOpt = None,
    exportable: Annotated[bool, typer.Option("--exportable", help="Allow export (one-way).")
                          ] = False,
    rotation_period: Annotated[str | None, typer.Option(
        "--rotation-period", help="Automatic rotation, e.g. 90d.")] = None,
    crypto_period: Annotated[str | None, typer.Option(
        "--crypto-period", help="How long a version may stay primary, e.g. 365d "
        "(default: the spec's NIST SP 800-57 crypto-period).")] = None,
    usage_limit: Annotated[int | None, typer.Option(
        "--usage-limit", min=1, help="Protect operations per version before rotation.")] = None,
    deletion_window_days: Annotated[int | None, typer.Option(
        "--deletion-window-days", min=7, max=30)] = None,
) -> None:
    """Create a key (its first version becomes primary)."""
    key = client(ctx).create_key(
        name, spec, purpose=purpose, description=description, owner=owner,
        labels=parse_pairs(label, "--label"), exportable=exportable or None,
        rotation_period=rotation_period, usage_limit=usage_limit,
        deletion_window_days=deletion_window_days, crypto_period=crypto_period)
    emit(ctx, key, lambda: show_key(key))


@app.command("list")
def list_(
    ctx: typer.Context,
    prefix: Annotated[str | None, typer.Option("--prefix", help="Names starting with this.")
                      ] = None,
    state: Annotated[str | None, typer.Option("--state")] = None,
    spec: Annotated[str | None, typer.Option("--spec")] = None,
    owner: Annotated[str | None, typer.Option("--owner")] = None,
    label: LabelOpt = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most this many.")
                     ] = None,
) -> None:
    """List keys (every page, unless --limit)."""
    found = client(ctx).iter_keys(prefix=prefix, state=state, spec=spec, owner=owner,
                                  labels=parse_pairs(label, "--label"),
                                  page_size=min(limit, 1000) if limit else None)
    keys = list(islice(found, limit) if limit else found)
    emit(ctx, {"keys": keys}, lambda: table(
        ["name", "spec", "purpose", "state", "primary", "owner"],
        [(k.name, k.spec, k.purpose, k.state, k.primary_version, k.owner) for k in keys],
        drop=("purpose", "primary", "spec")))  # the spec implies the purpose


@app.command()
def show(ctx: typer.Context, name: NameArg) -> None:
    """Show a key and its versions (never any material)."""
    key = client(ctx).get_key(name)
    emit(ctx, key, lambda: show_key(key))


@app.command()
def update(
    ctx: typer.Context,
    name: NameArg,
    description: Annotated[str | None, typer.Option("--description")] = None,
    owner: Annotated[str | None, typer.Option("--owner")] = None,
    label: Annotated[list[str] | None, typer.Option(
        "--label", help="key=value (repeat); replaces all labels.")] = None,
    rotation_period: Annotated[str | None, typer.Option("--rotation-period")] = None,
    crypto_period: Annotated[str | None, typer.Option("--crypto-period")] = None,
    usage_limit: Annotated[int | None, typer.Option("--usage-limit", min=1)] = None,
    min_decrypt_version: Annotated[int | None, typer.Option(
        "--min-decrypt-version", min=1, help="Refuse to decrypt under older versions.")] = None,
) -> None:
    """Change a key's metadata."""
    key = client(ctx).update_key(
        name, description=description, owner=owner, labels=parse_pairs(label, "--label"),
        rotation_period=rotation_period, usage_limit=usage_limit,
        min_decrypt_version=min_decrypt_version, crypto_period=crypto_period)
    emit(ctx, key, lambda: show_key(key))


@app.command()
def rotate(ctx: typer.Context, name: NameArg) -> None:
    """Make a new primary version; older versions still decrypt and verify."""
    key = client(ctx).rotate_key(name)
    _answer(ctx, key, f"{key.name}: primary version is now {key.primary_version}")


@app.command()
def disable(ctx: typer.Context, name: NameArg, version: VersionOpt = None) -> None:
    """Disable the key, or suspend one version (reversible with enable)."""
    key = client(ctx).disable_key(name, version)
    what = f"{key.name} version {version}" if version else key.name
    _answer(ctx, key, f"{what}: disabled")


@app.command()
def enable(ctx: typer.Context, name: NameArg, version: VersionOpt = None) -> None:
    """Enable the key, or one suspended version."""
    key = client(ctx).enable_key(name, version)
    what = f"{key.name} version {version}" if version else key.name
    _answer(ctx, key, f"{what}: enabled")


@app.command()
def revoke(
    ctx: typer.Context,
    name: NameArg,
    reason: Annotated[str, typer.Option("--reason", help="compromised, superseded, ...")],
    version: Annotated[int | None, typer.Option(
        "--version", min=1, help="Default: the primary version.")] = None,
    note: Annotated[str | None, typer.Option("--note", help="Free text for the audit log.")
                    ] = None,
    approval_id: ApprovalIdOpt = None,
) -> None:
    """Revoke a version: no new protection with it, ever."""
    key = client(ctx).revoke_key(name, reason, version=version, note=note,
                                 approval_id=approval_id)
    _answer(ctx, key, f"{key.name}: revoked ({reason})")


@app.command("schedule-deletion")
def schedule_deletion(
    ctx: typer.Context,
    name: NameArg,
    days: Annotated[int | None, typer.Option(
        "--days", min=7, max=30, help="Default: the key's deletion window.")] = None,
    approval_id: ApprovalIdOpt = None,
) -> None:
    """Schedule the key's destruction (cancellable until then)."""
    result = client(ctx).schedule_deletion(name, days, approval_id=approval_id)
    emit(ctx, result, lambda: console().print(
        f"{name}: destroyed at {when(result.destroy_at)} unless cancelled", markup=False))


@app.command("cancel-deletion")
def cancel_deletion(ctx: typer.Context, name: NameArg) -> None:
    """Cancel a scheduled destruction."""
    key = client(ctx).cancel_deletion(name)
    _answer(ctx, key, f"{key.name}: deletion cancelled; state {key.state}")


@app.command("public-key")
def public_key(
    ctx: typer.Context,
    name: NameArg,
    version: Annotated[int | None, typer.Option("--version", min=1)] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the PEM to this file.")
                   ] = None,
) -> None:
    """Print the public key (PEM) of an asymmetric key."""
    result = client(ctx).public_key(name, version)
    if out is not None:
        out.write_text(result.public_key_pem)
    emit(ctx, result, lambda: None if out else typer.echo(result.public_key_pem.rstrip("\n")))
