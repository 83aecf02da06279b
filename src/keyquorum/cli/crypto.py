"""Cryptographic commands: encrypt, decrypt, reencrypt, datakey, sign, verify, mac, random.

Inputs come from FILE or stdin (``-`` or nothing); ciphertexts are text, so
``keyquorum encrypt k < in | keyquorum decrypt > out`` round-trips any bytes.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import (
    client,
    decode_b64,
    decode_hex,
    emit,
    fields_table,
    parse_pairs,
    print_json,
    read_input,
    read_text_input,
    state,
    write_bytes,
)

KeyArg = Annotated[str, typer.Argument(help="Key name.", show_default=False)]
FileArg = Annotated[str | None, typer.Argument(
    help="Input file; stdin when absent or '-'.", show_default=False)]
ContextOpt = Annotated[list[str] | None, typer.Option(
    "--context", "-c", help="Encryption context key=value (repeat); decrypt needs the same.")]
HashOpt = Annotated[str | None, typer.Option(
    "--hash", help="Hash of --digest: sha256, sha384 or sha512.")]
DigestOpt = Annotated[str | None, typer.Option(
    "--digest", help="A precomputed digest (hex) instead of the input.")]
SchemeOpt = Annotated[str | None, typer.Option(
    "--scheme", help="RSA keys: pss (the default) or pkcs1v15; other keys refuse it.")]
KeyVersionOpt = Annotated[int | None, typer.Option(
    "--key-version", min=1, help="Version to check with (default: the primary).")]
UnsafeOpt = Annotated[bool, typer.Option(
    "--unsafe-allow-compromised",
    help="DANGER: decrypt under a compromised version (audited; data recovery only).")]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def encrypt(ctx: typer.Context, key: KeyArg, file: FileArg = None,
            context: ContextOpt = None) -> None:
    """Encrypt FILE or stdin under KEY; prints the ciphertext (text)."""
    result = client(ctx).encrypt(key, read_input(file), parse_pairs(context, "--context"))
    emit(ctx, result, lambda: typer.echo(result.ciphertext))


def decrypt(
    ctx: typer.Context,
    file: FileArg = None,
    context: ContextOpt = None,
    key: Annotated[str | None, typer.Option(
        "--key", help="Refuse a ciphertext of any other key.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the plaintext here.")
                   ] = None,
    unsafe_allow_compromised: UnsafeOpt = False,
) -> None:
    """Decrypt a ciphertext from FILE or stdin; writes the raw plaintext to stdout or --out."""
    result = client(ctx).decrypt(read_text_input(file), parse_pairs(context, "--context"),
                                 key=key, unsafe_allow_compromised=unsafe_allow_compromised)
    if state(ctx).json:
        if out is not None:
            write_bytes(result.plaintext, out)
        print_json(result)
    else:
        write_bytes(result.plaintext, out)


def reencrypt(
    ctx: typer.Context,
    file: FileArg = None,
    context: ContextOpt = None,
    to: Annotated[str | None, typer.Option("--to", help="Destination key (default: same).")
                  ] = None,
    to_context: Annotated[list[str] | None, typer.Option(
        "--to-context", help="Destination context key=value (repeat).")] = None,
    unsafe_allow_compromised: UnsafeOpt = False,
) -> None:
    """Re-encrypt a ciphertext under the primary version (or --to KEY); plaintext never leaves."""
    result = client(ctx).reencrypt(
        read_text_input(file), parse_pairs(context, "--context"), destination_key=to,
        destination_context=parse_pairs(to_context, "--to-context"),
        unsafe_allow_compromised=unsafe_allow_compromised)
    emit(ctx, result, lambda: typer.echo(result.ciphertext))


def datakey(
    ctx: typer.Context,
    key: KeyArg,
    bits: Annotated[int | None, typer.Option("--bits", help="Default 256.")] = None,
    context: ContextOpt = None,
    wrapped_only: Annotated[bool, typer.Option(
        "--wrapped-only", help="Only the wrapped key; no plaintext copy.")] = False,
) -> None:
    """Generate a data key wrapped under KEY (and its plaintext, base64)."""
    result = client(ctx).datakey(key, bits=bits, context=parse_pairs(context, "--context"),
                                 plaintext=not wrapped_only)
    emit(ctx, result, lambda: fields_table([
        ("ciphertext", result.ciphertext),
        ("plaintext", None if result.plaintext is None else b64(result.plaintext)),
        ("key version", result.key_version)]))


def _digest(digest: str | None, hash_name: str | None, file: str | None) -> bytes | None:
    if digest is None:
        if hash_name is not None:
            raise typer.BadParameter("--hash goes with --digest", param_hint="--hash")
        return None
    if file is not None:
        raise typer.BadParameter("give either --digest or an input file, not both")
    if hash_name is None:
        raise typer.BadParameter("--digest needs --hash (sha256, sha384 or sha512)")
    return decode_hex(digest, "--digest")


def sign(ctx: typer.Context, key: KeyArg, file: FileArg = None, digest: DigestOpt = None,
         hash_name: HashOpt = None, scheme: SchemeOpt = None) -> None:
    """Sign FILE or stdin (or a --digest) with KEY; prints the signature (base64)."""
    raw_digest = _digest(digest, hash_name, file)
    kq = client(ctx)
    if raw_digest is not None:
        result = kq.sign(key, digest=raw_digest, hash=hash_name, scheme=scheme)
    else:
        result = kq.sign(key, read_input(file), scheme=scheme)
    emit(ctx, result, lambda: typer.echo(b64(result.signature)))


def verify(
    ctx: typer.Context,
    key: KeyArg,
    signature: Annotated[str, typer.Option("--signature", "-s", help="Signature (base64).")],
    file: FileArg = None,
    digest: DigestOpt = None,
    hash_name: HashOpt = None,
    key_version: KeyVersionOpt = None,
    scheme: SchemeOpt = None,
) -> None:
    """Verify a signature over FILE or stdin (or a --digest); exit 1 when invalid."""
    raw_signature = decode_b64(signature, "--signature")
    raw_digest = _digest(digest, hash_name, file)
    kq = client(ctx)
    if raw_digest is not None:
        result = kq.verify(key, raw_signature, digest=raw_digest, hash=hash_name,
                           key_version=key_version, scheme=scheme)
    else:
        result = kq.verify(key, raw_signature, read_input(file), key_version=key_version,
                           scheme=scheme)
    emit(ctx, result, lambda: typer.echo("valid" if result.valid else "invalid"))
    if not result.valid:
        raise typer.Exit(1)


def mac(ctx: typer.Context, key: KeyArg, file: FileArg = None) -> None:
    """Compute the MAC of FILE or stdin with KEY; prints it (base64)."""
    result = client(ctx).mac(key, read_input(file))
    emit(ctx, result, lambda: typer.echo(b64(result.mac)))


def verify_mac(
    ctx: typer.Context,
    key: KeyArg,
    mac_value: Annotated[str, typer.Option("--mac", "-m", help="The MAC to check (base64).")],
    file: FileArg = None,
    key_version: KeyVersionOpt = None,
) -> None:
    """Check a MAC over FILE or stdin; exit 1 when invalid."""
    result = client(ctx).verify_mac(key, read_input(file), decode_b64(mac_value, "--mac"),
                                    key_version=key_version)
    emit(ctx, result, lambda: typer.echo("valid" if result.valid else "invalid"))
    if not result.valid:
        raise typer.Exit(1)


def decapsulate(
    ctx: typer.Context,
    key: KeyArg,
    encapsulation: Annotated[str, typer.Option(
        "--encapsulation", "-e", help="The encapsulation (base64).")],
    key_version: KeyVersionOpt = None,
) -> None:
    """Recover the shared secret of an encapsulation made with KEY's public key (base64)."""
    result = client(ctx).decapsulate(key, decode_b64(encapsulation, "--encapsulation"),
                                     key_version=key_version)
    emit(ctx, result, lambda: typer.echo(b64(result.shared_secret)))


def random(
    ctx: typer.Context,
    n: Annotated[int, typer.Argument(min=1, max=1024, help="How many bytes (1-1024).",
                                     show_default=False)],
    hex_output: Annotated[bool, typer.Option("--hex", help="Hexadecimal instead of base64.")
                          ] = False,
    raw: Annotated[bool, typer.Option("--raw", help="Raw bytes on stdout.")] = False,
) -> None:
    """N random bytes from the server's CSPRNG (base64 by default)."""
    data = client(ctx).random(n)
    if state(ctx).json:
        print_json({"random": data})
    elif raw:
        write_bytes(data)
    else:
        typer.echo(data.hex() if hex_output else b64(data))


COMMANDS: dict[str, Callable[..., Any]] = {
    "encrypt": encrypt, "decrypt": decrypt, "reencrypt": reencrypt, "datakey": datakey,
    "sign": sign, "verify": verify, "mac": mac, "verify-mac": verify_mac,
    "decapsulate": decapsulate, "random": random,
}
"""The top-level commands of this module, by name (``keyquorum.cli.tree`` loads them)."""
