"""``keyquorum custodian prove|status|keygen|register-key|decrypt-share`` and
``keyquorum share check`` (offline).

``custodian prove`` fetches a fresh challenge, computes the proof of possession
on this machine and sends only the proof: the share never leaves it. The key
commands (a custodian's own key pair, shares sealed to it) are in
``cli.custodian_keys``.
``share check`` needs no server at all: it checks a share against the public
commitments saved at init (``operator init --commitments-out FILE``) or taken
from ``keyquorum custodian status --json`` (its ``commitments`` field).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.panel import Panel
from rich.text import Text

from ..client import CustodianStatus
from . import custodian_keys
from ._common import client, console, emit, fail, read_share, show, table

app = typer.Typer(help="Custodians: your key, your sealed share, drills, the quorum margin.",
                  no_args_is_help=True)
share_app = typer.Typer(help="Check an unseal share offline.", no_args_is_help=True)


@app.command()
def prove(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="Your custodian name.")],
    share_file: Annotated[str | None, typer.Option(
        "--share-file", help="File holding your share (default: stdin).")] = None,
) -> None:
    """Prove you still hold your share: only a proof is sent, never the share."""
    share = read_share(share_file)
    result = client(ctx).prove_share(name, share)
    emit(ctx, result, lambda: console().print(
        f"[green]verified[/green]: {Text(name)} holds their share "
        f"(recorded {show(result.verified_at)})"))


def _show_status(status: CustodianStatus) -> None:
    table(("index", "custodian", "acknowledged", "last verified", "how", "key"),
          [(c.index, c.name, c.acknowledged_at or "NO", c.last_verified_at, c.verified_by,
            c.key_fingerprint or "-") for c in status.custodians],
          title=f"custodians (threshold {status.threshold} of {status.shares}, "
                f"generation {status.generation})")
    if status.unacknowledged:
        console().print(f"not acknowledged (their shares do not count until they prove them): "
                        f"{Text(', '.join(status.unacknowledged))}")
    line = (f"quorum margin {status.margin}: {status.verified} share(s) verified in the last "
            f"{status.drill_window_days} days, {status.threshold} needed")
    if status.warning:
        console().print(Panel(Text(status.warning), title="WARNING", border_style="bold red"))
    else:
        console().print(line)
    if status.seal_fingerprint:
        console().print(f"seal fingerprint (pin backups to it: restore/drill --expect): "
                        f"{status.seal_fingerprint}")


@app.command()
def status(ctx: typer.Context) -> None:
    """Each custodian's last drill and the quorum margin (``--json`` includes the commitments)."""
    result = client(ctx).custodian_status()
    emit(ctx, result, lambda: _show_status(result))


def _commitments(path: Path) -> list[bytes]:
    try:
        raw: Any = json.loads(path.read_text())
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise typer.BadParameter(f"{path} is not JSON") from exc
    items = raw.get("commitments") if isinstance(raw, dict) else raw
    try:
        if not isinstance(items, list) or not items:
            raise ValueError
        return [bytes.fromhex(item) for item in items]
    except (TypeError, ValueError):
        raise typer.BadParameter(f"{path} must hold {{\"commitments\": [hex, ...]}}, as "
                                 "written by `operator init --commitments-out` or "
                                 "`custodian status --json`") from None


@share_app.command("check")
def check(
    ctx: typer.Context,
    commitments: Annotated[Path, typer.Option(
        "--commitments", help="JSON with the seal's public commitments "
        "(`operator init --commitments-out`, or `custodian status --json`).")],
    share: Annotated[str | None, typer.Argument(
        help="The share; omit (or -) to read it from stdin.", show_default=False)] = None,
) -> None:
    """Check a share against the seal's commitments, fully offline (no server)."""
    from keyquorum.crypto import vss
    from keyquorum.errors import KeyquorumError
    from keyquorum.seal.shares import decode_share

    points = _commitments(commitments)
    text = read_share(None) if share is None or share == "-" else share.strip()
    try:
        parsed = decode_share(text)
    except KeyquorumError as exc:
        raise fail(f"invalid_share: {exc.message}") from None
    if not vss.verify_share(parsed, points):
        raise fail(f"mismatch: share {parsed.index} does not match these commitments (an old "
                   "share from before a rekey, or another service's)")
    emit(ctx, {"ok": True, "index": parsed.index},
         lambda: typer.echo(f"ok: share {parsed.index} matches the commitments"))


custodian_keys.register(app)
