"""``keyquorum operator generate-root init|submit|status|cancel|decode``: break glass.

A quorum of custodians mints a new root token when every privileged token is
lost (``service.generate_root``). No token is used by any of these commands.

- ``init --key-file FILE``: the requester's key pair. A FILE that does not exist is
  created (0600, never overwritten) holding a fresh private key made here; its
  public half goes to the server. An existing FILE may also be a custodian's key
  file (``keyquorum custodian keygen``: opened with its passphrase when the token
  is decoded). ``--public-key FILE`` instead sends a public key only, whose holder
  decodes elsewhere.
  The first custodian's share opens the attempt; the nonce printed goes to the
  other custodians (it is also what cancels the attempt).
- ``submit --nonce N``: each further custodian. The submission that completes the
  quorum is answered the token sealed to the requester's key: with ``--key-file``
  it is opened here and printed once; otherwise ``encoded_token`` and the attempt
  are printed, for the requester's ``decode``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.panel import Panel

from ..client._generate_root import GenerateRootStatus
from ._common import client, console, emit, err_console, fields_table, read_share

if TYPE_CHECKING:
    from keyquorum.crypto.kem import KemKey

_MADE_HERE = "-----BEGIN KEYQUORUM X25519-ML-KEM-768 PRIVATE KEY-----"

app = typer.Typer(help="Break glass: a custodian quorum mints a new root token (no token "
                       "needed).", no_args_is_help=True)

KeyFile = Annotated[Path | None, typer.Option(
    "--key-file", help="The requester's private key file (made 0600 by init if it does "
    "not exist); the new token is opened with it.")]


def _write_new_key(path: Path) -> None:
    """Make a key pair; the private armor goes to ``path`` (created 0600, never replaced)."""
    from keyquorum.crypto import kem_box

    private_pem, _public_pem = kem_box.generate()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise typer.BadParameter(f"cannot create {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "w") as handle:
        handle.write(private_pem)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}") from exc


@dataclass(frozen=True)
class Requester:
    """The requester's key file: its public half now, its private key only when needed
    (a custodian's key file asks for its passphrase then)."""

    public_pem: str
    open: Callable[[], KemKey]


def requester(path: Path) -> Requester:
    """A key file made by ``init``, or a custodian's (``keyquorum custodian keygen``)."""
    from keyquorum.crypto import kem_box
    from keyquorum.seal.custodian_key import CustodianKeyError, open_key_file, read_key_file

    text = _read(path)
    if text.lstrip().startswith(_MADE_HERE):
        try:
            key = kem_box.load_private_pem(text)
        except ValueError as exc:
            raise typer.BadParameter(f"{path} is a damaged key file") from exc
        return Requester(key.public_pem(), lambda: key)
    try:
        found = read_key_file(text.encode())
    except CustodianKeyError as exc:
        raise typer.BadParameter(f"{path} is neither a key file made by `generate-root "
                                 "init` nor a custodian key file") from exc

    def unlock() -> KemKey:
        from .seals import read_passphrase

        try:
            return open_key_file(found, read_passphrase(f"Passphrase of {path}",
                                                        confirm=False))
        except CustodianKeyError as exc:
            raise typer.BadParameter(exc.message) from exc

    return Requester(found.public_pem, unlock)


def _show(status: GenerateRootStatus, key: Requester | None) -> None:
    if status.complete:
        _show_token(status, key)
        return
    if not status.started:
        console().print("no root token generation in progress"
                        + (" (cancelled)" if status.cancelled else ""))
        return
    console().print(f"root token generation in progress: {status.progress}/{status.required} "
                    "shares")
    fields_table([("attempt", status.attempt), ("opened by", status.opened_by),
                  ("submitted", list(status.submitted)),
                  ("public key", status.public_key_fingerprint),
                  ("expires", status.expires_at)])
    if status.nonce:  # only submitters are given it
        console().print("give the nonce to the other custodians (their submit, and cancel, "
                        "need it):")
        typer.echo(f"nonce: {status.nonce}")


def _show_token(status: GenerateRootStatus, key: Requester | None) -> None:
    if key is None:
        console().print("quorum reached: a root token was minted, sealed to the requester's "
                        f"key {status.public_key_fingerprint}. Give the requester:")
        typer.echo(f"attempt: {status.attempt}")
        typer.echo(f"encoded token: {status.encoded_token}")
        console().print("they run `keyquorum operator generate-root decode --key-file FILE "
                        f"--attempt {status.attempt}` with the encoded token on stdin.")
        return
    from keyquorum.auth.break_glass import open_root_token_with

    assert status.encoded_token is not None and status.attempt is not None
    token = open_root_token_with(key.open(), status.encoded_token, status.attempt)
    err_console().print(Panel(
        f"A new ROOT token (accessor {status.accessor}) is shown ONCE. It can do anything; "
        "make the tokens you need and revoke it (keyquorum token revoke).",
        title="WARNING: SECRET MATERIAL", border_style="bold red"))
    typer.echo(f"Root token: {token}")


@app.command("init")
def start(
    ctx: typer.Context,
    key_file: KeyFile = None,
    public_key: Annotated[Path | None, typer.Option(
        "--public-key", help="Send this public key instead (an X25519-ML-KEM-768 PUBLIC KEY "
        "PEM); its holder decodes the token.")] = None,
    share_file: Annotated[str | None, typer.Option(
        "--share-file", help="File holding your share (default: stdin).")] = None,
    ttl: Annotated[str | None, typer.Option(
        "--ttl", help="Life of the new token (e.g. 8h); default none, like init's.")] = None,
) -> None:
    """Open an attempt: the requester's key and the FIRST custodian's share."""
    if (key_file is None) == (public_key is None):
        raise typer.BadParameter("give --key-file (made here if missing) or --public-key")
    key = None
    if key_file is not None:
        if not key_file.exists():
            _write_new_key(key_file)
        key = requester(key_file)
        public_pem = key.public_pem
    else:
        assert public_key is not None
        public_pem = _read(public_key)
    share = read_share(share_file, "Your unseal share")
    status = client(ctx).generate_root_init(public_pem, share, ttl)
    emit(ctx, status, lambda: _show(status, key))


@app.command()
def submit(
    ctx: typer.Context,
    nonce: Annotated[str, typer.Option("--nonce", help="The attempt's nonce (from init).")],
    share_file: Annotated[str | None, typer.Option(
        "--share-file", help="File holding your share (default: stdin).")] = None,
    key_file: KeyFile = None,
) -> None:
    """Submit your share to the attempt in progress."""
    key = requester(key_file) if key_file is not None else None
    status = client(ctx).generate_root_submit(nonce, read_share(share_file, "Your unseal share"))
    emit(ctx, status, lambda: _show(status, key))


@app.command()
def status(ctx: typer.Context) -> None:
    """Show the attempt in progress (never its nonce)."""
    result = client(ctx).generate_root_status()
    emit(ctx, result, lambda: _show(result, None))


@app.command()
def cancel(
    ctx: typer.Context,
    nonce: Annotated[str, typer.Option("--nonce", help="The attempt's nonce (from init).")],
) -> None:
    """Cancel the attempt; the shares submitted to it are deleted."""
    result = client(ctx).generate_root_cancel(nonce)
    emit(ctx, result, lambda: console().print("root token generation cancelled"))


@app.command()
def decode(
    ctx: typer.Context,
    key_file: Annotated[Path, typer.Option("--key-file", help="The requester's private key "
                                           "file (from init).")],
    attempt: Annotated[str, typer.Option("--attempt", help="The attempt id (gr_...).")],
    encoded_token: Annotated[str | None, typer.Argument(
        help="The encoded token; omit to read it from stdin.", show_default=False)] = None,
) -> None:
    """Open an encoded token with the requester's private key; print the root token."""
    from keyquorum.auth.break_glass import open_root_token_with
    from keyquorum.crypto.errors import InvalidCiphertext

    key = requester(key_file)
    text = encoded_token if encoded_token is not None else \
        typer.get_text_stream("stdin").readline()
    try:
        token = open_root_token_with(key.open(), text, attempt)
    except InvalidCiphertext:
        raise typer.BadParameter("the encoded token does not open with this key file and "
                                 "attempt") from None
    emit(ctx, {"root_token": token}, lambda: typer.echo(token))
