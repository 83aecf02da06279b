"""``keyquorum report``: the key inventory and the compliance report.

Both come from the server (``reports:read``); ``--json`` prints its answer as
is, ``--html OUT`` saves the server's self-contained HTML page. Key names,
owners and findings are shown as plain text: Rich markup in them (an owner of
``[red]...``) is escaped, never interpreted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from ._common import client, console, emit, fail, table, when

app = typer.Typer(help="Inventory and compliance reports.", no_args_is_help=True)

_STYLE = {"pass": "green", "attention": "yellow", "fail": "red"}

HtmlOption = Annotated[Path | None, typer.Option(
    "--html", help="Save the report as a self-contained HTML page to this file.",
    dir_okay=False, writable=True)]


def _plain(value: Any) -> str:
    """A value from the server, safe to print through Rich (markup escaped)."""
    return "-" if value is None or value == "" else escape(str(value))


def _status(status: str) -> str:
    style = _STYLE.get(status, "bold")
    return f"[{style}]{escape(status)}[/{style}]"


def _save_html(path: Path, page: str) -> None:
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise typer.BadParameter(f"cannot write {path}: {exc.strerror}") from None
    typer.echo(f"wrote {path}", err=True)


@app.command("inventory")
def inventory(ctx: typer.Context, html: HtmlOption = None) -> None:
    """Every key: owner, spec, state, use, age against its crypto-period, and flags."""
    sdk = client(ctx)
    if html is not None:
        _save_html(html, sdk.inventory_report_html())
        return
    report = sdk.inventory_report()

    def human() -> None:
        summary = report["summary"]
        raised = ", ".join(f"{flag} {n}" for flag, n in summary["flags"].items() if n)
        console().print(f"{summary['keys']} key(s) at {_plain(when(report['generated_at']))}; "
                        f"flags: {_plain(raised or 'none')}")
        # At 80 columns the key, its state and its flags matter most; dates go first.
        table(["key", "owner", "spec", "state", "primary", "protects", "last use",
               "age / period", "next rotation", "flags"], [
            (_plain(k["name"]), _plain(k["owner"]), k["spec"], k["state"],
             f"{k['primary_version']} of {len(k['versions'])}",
             ("" if k.get("protect_count_exact", True) else "<=") + str(k["protect_count"]),
             _plain(k["last_used_at"]),
             f"{k['primary_age_days']} / {k['crypto_period']['seconds'] // 86400} d",
             _plain(k["next_rotation"]), _plain(", ".join(k["flags"])))
            for k in report["keys"]], markup=True,
            drop=("next rotation", "last use", "age / period", "owner", "primary", "spec"))

    emit(ctx, report, human)


@app.command("compliance")
def compliance(ctx: typer.Context, html: HtmlOption = None) -> None:
    """PCI DSS 3.6-3.7 and NIST SP 800-57 controls: pass, attention or fail, with evidence."""
    sdk = client(ctx)
    if html is not None:
        _save_html(html, sdk.compliance_report_html())
        return
    report = sdk.compliance_report()

    def human() -> None:
        counts = ", ".join(f"{n} {s}" for s, n in report["summary"]["controls"].items())
        console().print(f"overall {_status(report['status'])} at "
                        f"{_plain(when(report['generated_at']))}: {counts}")
        table(["requirement", "control", "status", "why"], [
            (f"{_plain(c['framework'])} {_plain(c['requirement'])}", _plain(c["title"]),
             _status(c["status"]), _plain(c["summary"])) for c in report["controls"]],
              markup=True)
        flagged = [k for k in report["keys"] if k["status"] != "pass"]
        if flagged:
            table(["key", "owner", "status", "controls not passing"], [
                (_plain(k["key"]), _plain(k["owner"]), _status(k["status"]),
                 _plain(", ".join(f"{cid} {s}" for cid, s in k["controls"].items()
                                  if s != "pass")))
                for k in flagged], title="keys needing attention", markup=True)

    emit(ctx, report, human)


@app.command("verify")
def verify(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(
        help="A saved report: --html output, or the --json answer.", exists=True,
        dir_okay=False, show_default=False)],
    public_key: Annotated[Path | None, typer.Option(
        "--public-key", help="The audit public key you kept (`audit export "
        "--public-key-out`): proves the report is this server's.", exists=True,
        dir_okay=False)] = None,
) -> None:
    """Check a saved report's signature offline (no server); exit 1 if it was changed."""
    from ..reports.signed import verify as check

    verdict = check(file.read_bytes(),
                    public_key.read_text() if public_key is not None else None)
    answer = {"ok": verdict.ok, "reason": verdict.reason, "key_id": verdict.key_id,
              "pinned": verdict.pinned, "provenance": verdict.provenance}

    def human() -> None:
        if not verdict.ok:
            return
        facts = verdict.provenance or {}
        head = facts.get("audit_chain_head") or {}
        server = facts.get("server") or {}
        # Plain lines, never wrapped: the key id and the chain hash get copied.
        typer.echo(f"ok: signed by the audit key {verdict.key_id}"
                   + ("" if verdict.pinned else " (not pinned: give --public-key to check it "
                      "is your server's)"))
        typer.echo(f"  server {server.get('node')} (keyquorum {server.get('version')}), "
                   f"generated {when(facts.get('generated_at'))}")
        typer.echo(f"  audit chain head record {head.get('records')} {head.get('chain_hash')}")

    emit(ctx, answer, human)
    if not verdict.ok:
        raise fail(f"invalid_signature: {verdict.reason}")
