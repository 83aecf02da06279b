"""``keyquorum operator seals``: list, add and remove the seals of the seal set.

Shamir is always there (it is the recovery path). The others: ``add passphrase``
(typed hidden twice, or one line on stdin), ``add pkcs11`` (an HSM key; the PIN
stays where it is, named by ``--pin-env`` or ``--pin-file``) and ``add awskms``
(a KMS key; credentials from the standard AWS chain). Under dual control, re-send
with ``--approval-id``. An added seal is a proposal: it joins the seal set when
custodians submit a quorum of shares (``seals submit --nonce N``, no token), like
rekey; ``seals pending`` shows it and ``seals cancel`` drops it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from ..client import Client, Seal, SealAddStatus, SealStatus
from ._common import client, emit, read_share, show, stdin_is_tty, table
from .approvals import ApprovalIdOpt

app = typer.Typer(help="List, add and remove seals (Shamir always stays).",
                  no_args_is_help=True)
add_app = typer.Typer(help="Add a seal: passphrase, pkcs11 (HSM), awskms or a cluster node.",
                      no_args_is_help=True)
app.add_typer(add_app, name="add")

IdOpt = Annotated[str | None, typer.Option(
    "--id", help="The seal's id (default: its type; give one for a second seal of a type).")]


def register(operator: typer.Typer) -> None:
    """Mount under ``keyquorum operator`` as ``seals``."""
    operator.add_typer(app, name="seals")


def _attempt(seal: Seal) -> str:
    if not seal.automatic:
        return "-"
    attempt = seal.last_attempt
    if not attempt:
        return "not tried"
    return "ok" if attempt.get("ok") else f"failed: {attempt.get('reason')}"


def _show(seals: list[Seal]) -> None:
    table(["id", "type", "parameters", "last automatic attempt"],
          [(s.id, s.type, show({k: v for k, v in s.params.items()
                                if k not in ("salt", "public_key")}),
            _attempt(s)) for s in seals])


@app.command("list")
def list_seals(ctx: typer.Context) -> None:
    """Every seal, its public parameters, and how the last automatic attempt went."""
    seals = client(ctx).list_seals()
    emit(ctx, seals, lambda: _show(seals))


def _added(ctx: typer.Context, kind: str, seal_id: str | None, approval_id: str | None,
           **params: Any) -> None:
    status = client(ctx).add_seal(kind, seal_id=seal_id, approval_id=approval_id, **params)
    emit(ctx, status, lambda: _show_pending(status))


def _show_pending(status: SealAddStatus) -> None:
    seal = status.seal or {}
    name = f"{seal.get('type')} seal {seal.get('id')}"
    if status.complete:
        typer.echo(f"added {name}")
    elif status.cancelled or not status.started:
        typer.echo("no seal addition is waiting for custodians")
    else:
        typer.echo(f"proposed {name}: it is added once {status.required} custodians submit "
                   f"their shares ({status.progress} so far) with\n  keyquorum operator "
                   f"seals submit --nonce {status.nonce}")


@app.command("submit")
def submit(ctx: typer.Context,
           nonce: Annotated[str, typer.Option("--nonce", help="The proposal's nonce.")],
           share_file: Annotated[str | None, typer.Option(
               "--share-file", help="File holding your share (default: stdin).")] = None,
           ) -> None:
    """Custodians: approve a proposed seal with your current share (no token needed)."""
    status = client(ctx).seal_add_submit(nonce, read_share(share_file))
    emit(ctx, status, lambda: _show_pending(status))


@app.command("pending")
def pending(ctx: typer.Context) -> None:
    """The proposed seal waiting for custodians, with every public parameter."""
    status = client(ctx).seal_add_status()

    def human() -> None:
        _show_pending(status)
        if status.started and status.seal:
            typer.echo(f"parameters: {show(status.seal.get('params', {}))}")

    emit(ctx, status, human)


@app.command("cancel")
def cancel(ctx: typer.Context) -> None:
    """Drop the proposed seal (and the shares submitted for it)."""
    status = client(ctx).seal_add_cancel()
    emit(ctx, status, lambda: _show_pending(status))


def read_passphrase(prompt: str, *, confirm: bool) -> str:
    """A passphrase typed hidden on a terminal, else the first line of stdin."""
    if stdin_is_tty():
        value = str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm))
    else:
        value = typer.get_text_stream("stdin").readline().rstrip("\r\n")
    if not value:
        raise typer.BadParameter("no passphrase given")
    return value


@add_app.command("passphrase")
def add_passphrase(ctx: typer.Context, seal_id: IdOpt = None,
                   approval_id: ApprovalIdOpt = None) -> None:
    """A passphrase (16+ characters, Argon2id) that opens the service alone."""
    _added(ctx, "passphrase", seal_id, approval_id,
           passphrase=read_passphrase("New unseal passphrase", confirm=True))


@add_app.command("pkcs11")
def add_pkcs11(
    ctx: typer.Context,
    module: Annotated[str, typer.Option("--module", help="Path of the PKCS#11 library.")],
    token_label: Annotated[str, typer.Option("--token-label", help="The token's label.")],
    key_label: Annotated[str, typer.Option(
        "--key-label", help="The AES key's label (found, or generated in the token).")],
    pin_env: Annotated[str | None, typer.Option(
        "--pin-env", help="Environment variable of the server holding the PIN.")] = None,
    pin_file: Annotated[str | None, typer.Option(
        "--pin-file", help="File on the server holding the PIN.")] = None,
    seal_id: IdOpt = None,
    approval_id: ApprovalIdOpt = None,
) -> None:
    """An AES-256 key in an HSM; the server unseals itself with it at start."""
    if (pin_env is None) == (pin_file is None):
        raise typer.BadParameter("give exactly one of --pin-env or --pin-file")
    pin = {"pin_env": pin_env} if pin_env is not None else {"pin_file": pin_file}
    _added(ctx, "pkcs11", seal_id, approval_id, module=module, token_label=token_label,
           key_label=key_label, **pin)


@add_app.command("awskms")
def add_awskms(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Option("--key-id", help="KMS key id, ARN or alias.")],
    region: Annotated[str, typer.Option("--region", help="AWS region of the key.")],
    endpoint_url: Annotated[str | None, typer.Option(
        "--endpoint-url", help="A KMS endpoint other than AWS's (VPC endpoint, test).")] = None,
    seal_id: IdOpt = None,
    approval_id: ApprovalIdOpt = None,
) -> None:
    """A cloud KMS key; the server unseals itself with it at start."""
    extra = {"endpoint_url": endpoint_url} if endpoint_url else {}
    _added(ctx, "awskms", seal_id, approval_id, key_id=key_id, region=region, **extra)


@add_app.command("node")
def add_node(
    ctx: typer.Context,
    public_key_file: Annotated[Path, typer.Option(
        "--public-key-file", help="The node's public key (from `seals node-key`).")],
    seal_id: Annotated[str, typer.Option(
        "--id", help="The node's name: its node_name setting.")],
    approval_id: ApprovalIdOpt = None,
) -> None:
    """Enrol a cluster node: unsealed nodes hand it the root key when it starts sealed."""
    _added(ctx, "node", seal_id, approval_id, public_key=public_key_file.read_text())


@app.command("node-key")
def node_key(ctx: typer.Context, out: Annotated[Path, typer.Option(
        "--out", help="Where the private key goes (created 0600; never overwritten).")],
             ) -> None:
    """On a new node: make its key pair; enrol the public key with `seals add node`."""
    from ..crypto import kem_box

    private_pem, public_pem = kem_box.generate()
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:  # another node's key may be there: say so, never replace it
        raise typer.BadParameter(f"{out} exists; a node key is never overwritten",
                                 param_hint="--out") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(private_pem)
    public_file = out.with_name(out.name + ".pub")
    public_file.write_text(public_pem)
    made = {"private_key_file": str(out), "public_key_file": str(public_file),
            "fingerprint": kem_box.public_fingerprint(public_pem)}
    emit(ctx, made, lambda: typer.echo(
        f"private key: {out} (keep it on this node; node_key_file)\n"
        f"public key:  {public_file}\nfingerprint: {made['fingerprint']}"))


@app.command("remove")
def remove(ctx: typer.Context,
           seal_id: Annotated[str, typer.Argument(help="The seal's id.")],
           approval_id: ApprovalIdOpt = None) -> None:
    """Remove a seal (Shamir is the recovery path and cannot be removed)."""
    client(ctx).remove_seal(seal_id, approval_id=approval_id)
    emit(ctx, {"id": seal_id, "removed": True}, lambda: typer.echo(f"removed seal {seal_id}"))


def unseal_without_shares(kq: Client, *, passphrase: bool, auto: bool) -> SealStatus:
    """``operator unseal --passphrase`` (hidden prompt or stdin) or ``--auto``."""
    if passphrase and auto:
        raise typer.BadParameter("give --passphrase or --auto, not both")
    if auto:
        return kq.unseal_auto()
    return kq.unseal_passphrase(read_passphrase("Unseal passphrase", confirm=False))
