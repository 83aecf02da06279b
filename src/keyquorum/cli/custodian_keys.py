"""``keyquorum custodian keygen|register-key|decrypt-share``: a custodian's own key.

Run on the custodian's machine. ``keygen`` makes the key pair (the private key
goes to a 0600 file, sealed under a passphrase, and never leaves this machine)
and prints its fingerprint: write it down. ``register-key`` puts the public key
in the custodian's name, with a proof made from their current share (the share
is not sent). ``decrypt-share`` fetches the share the server sealed to this key,
checks that the server sealed it to THIS key and holds THIS key in the
custodian's name (else it stops: someone else's key stood in for yours), opens
it, checks it against the seal's commitments, and acknowledges receipt with a
proof of possession, so the share starts counting toward the quorum margin.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from ..client import EncryptedShare
from ._common import client, console, emit, fail, read_share
from .seals import read_passphrase as _passphrase  # hidden at a terminal, else one stdin line

NameOpt = Annotated[str, typer.Option("--name", help="Your custodian name.")]
KeyFileOpt = Annotated[Path, typer.Option(
    "--key-file", help="Your key file (from `keyquorum custodian keygen`).")]


def _write_new(path: Path, data: bytes) -> None:
    """Create ``path`` 0600 (never overwriting, never through a link) and write ``data``."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise fail(f"{path} exists; it is never overwritten (move it away first)") from None
    except OSError as exc:
        raise fail(f"cannot create {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}") from None


def _problem(exc: ValueError) -> typer.Exit:
    """A key or share check that failed: ``error: <code>: <message>``."""
    return fail(f"{getattr(exc, 'code', 'invalid_request')}: {exc}")


def keygen(
    ctx: typer.Context,
    name: NameOpt,
    out: Annotated[Path | None, typer.Option(
        "--out", help="The private key file (default NAME.kqkey; created 0600, never "
        "overwritten).")] = None,
) -> None:
    """Make your key pair here; the private key never leaves this machine."""
    from keyquorum.client._custodian_keys import new_key_file
    from keyquorum.seal.custodian_key import grouped

    key_path = out or Path(f"{name}.kqkey")
    public_path = key_path.with_name(key_path.name + ".pub")
    for path in (key_path, public_path):
        if path.exists() or path.is_symlink():
            raise fail(f"{path} exists; it is never overwritten (move it away first)")
    try:
        made = new_key_file(name, _passphrase("Passphrase for the new key file", confirm=True))
    except ValueError as exc:
        raise _problem(exc) from None
    _write_new(key_path, made.file_bytes)
    _write_new(public_path, made.public_pem.encode())
    emit(ctx, {"name": name, "key_file": str(key_path), "public_key_file": str(public_path),
               "fingerprint": made.fingerprint},
         lambda: typer.echo(
             f"private key: {key_path} (0600; keep it, and its passphrase, on this machine)\n"
             f"public key:  {public_path} (register it: `keyquorum custodian register-key`)\n"
             f"fingerprint: {grouped(made.fingerprint)}\n"
             "Write the fingerprint down: `custodian status` and every share delivered to "
             "you must show exactly this one."))


def register_key(
    ctx: typer.Context,
    name: NameOpt,
    key_file: KeyFileOpt,
    share_file: Annotated[str | None, typer.Option(
        "--share-file", help="File holding your current share (default: stdin).")] = None,
) -> None:
    """Register your public key: a proof of your current share, bound to the key."""
    from keyquorum.client._custodian_keys import read_key_file
    from keyquorum.seal.custodian_key import grouped

    try:
        info = read_key_file(_read(key_file))
    except ValueError as exc:
        raise _problem(exc) from None
    if info.name != name:
        raise fail(f"wrong_custodian_key: this key file is {info.name!r}'s, not {name!r}'s")
    share = read_share(share_file, "Your current unseal share")
    result = client(ctx).register_custodian_key(name, share, info.public_pem)
    if result.fingerprint != info.fingerprint:  # the server must name exactly this key
        raise fail(f"custodian_key_mismatch: the server registered {result.fingerprint}, "
                   f"not this key ({info.fingerprint})")
    emit(ctx, result, lambda: console().print(
        f"[green]registered[/green]: {name}'s key {grouped(result.fingerprint)}"
        + (f" (replacing {result.replaced})" if result.replaced else "")))


def decrypt_share(
    ctx: typer.Context,
    name: NameOpt,
    key_file: KeyFileOpt,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Write the share here (created 0600, never overwritten); default: "
        "print it.")] = None,
    acknowledge: Annotated[bool, typer.Option(
        "--acknowledge/--no-acknowledge",
        help="Prove possession right away, so the share counts toward the quorum.")] = True,
) -> None:
    """Open the share sealed to your key, check it, and acknowledge receipt."""
    from keyquorum.client._custodian_keys import check_delivery, open_delivered_share
    from keyquorum.seal.custodian_key import grouped

    kq = client(ctx)
    delivered = kq.custodian_share(name)
    data = _read(key_file)
    try:
        info = check_delivery(delivered, data)  # before the passphrase: is it for this key?
        share = open_delivered_share(delivered, data, _passphrase(
            f"Passphrase of {key_file}", confirm=False))
    except ValueError as exc:
        raise _problem(exc) from None
    if out is not None:
        _write_new(out, (share + "\n").encode())
    proved = kq.prove_share(name, share) if acknowledge else None

    def human() -> None:
        typer.echo(f"share {delivered.index} of {name} (seal generation "
                   f"{delivered.generation}), sealed to your key {grouped(info.fingerprint)}")
        if out is None:
            typer.echo(share)
        else:
            typer.echo(f"written to {out} (0600)")
        if proved is not None:
            console().print("[green]acknowledged[/green]: the share now counts toward the "
                            "quorum margin")
        else:
            typer.echo("not acknowledged yet: run `keyquorum custodian prove` with it")

    emit(ctx, {"custodian": name, "index": delivered.index,
               "generation": delivered.generation, "fingerprint": info.fingerprint,
               "out": str(out) if out else None, "acknowledged": proved is not None,
               **({"share": share} if out is None else {})}, human)


CustodianKeyOpt = Annotated[list[str] | None, typer.Option(
    "--custodian-key", help="NAME=FILE: the public key of custodian NAME (their NAME.kqkey.pub "
    "from `custodian keygen`); each share is then sealed to its custodian (repeat).")]


def given_keys(pairs: list[str] | None) -> dict[str, str] | None:
    """``--custodian-key NAME=FILE`` options as name -> public key PEM (a key file's
    public half is taken too; its private half is sealed and not read)."""
    from keyquorum.client._custodian_keys import read_key_file

    if not pairs:
        return None
    keys: dict[str, str] = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise typer.BadParameter("--custodian-key takes NAME=FILE")
        data = _read(Path(path))
        try:
            keys[name] = read_key_file(data).public_pem
        except ValueError:
            keys[name] = data.decode("utf-8", errors="replace")  # a public key PEM file
    return keys


def show_sealed_shares(items: tuple[EncryptedShare, ...]) -> None:
    """The sealed shares of init or rekey: public, for each custodian to open at home."""
    from keyquorum.seal.custodian_key import grouped

    for item in items:
        typer.echo(f"share {item.index} ({item.custodian}) sealed to {grouped(item.recipient)}")
    typer.echo("Each custodian runs `keyquorum custodian decrypt-share --name NAME --key-file "
               "NAME.kqkey` on their own machine: it fetches their sealed share, checks the "
               "key is theirs, opens it and acknowledges receipt.")


def register(app: typer.Typer) -> None:
    """Add the key commands to ``keyquorum custodian``."""
    app.command("keygen")(keygen)
    app.command("register-key")(register_key)
    app.command("decrypt-share")(decrypt_share)
