"""``keyquorum approval`` and ``keyquorum operator dual-control``: dual control from a shell.

A dual-controlled command (``key revoke``, ``key schedule-deletion``, ``policy
put|delete``, ``token create`` of a privileged token, ``operator dual-control
set`` when weakening) first fails with ``approval_required`` and an approval
id; approvers run ``keyquorum approval approve ID``; the requester then runs
the same command again with ``--approval-id ID``.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ..client import Approval, DualControlSettings
from ._common import client, console, emit, fields_table, table

app = typer.Typer(help="List, show, approve and reject dual-control requests.",
                  no_args_is_help=True)
dual_control_app = typer.Typer(help="Show or change dual control (split knowledge).",
                               no_args_is_help=True)

ApprovalIdArg = Annotated[str, typer.Argument(help="The approval request id (apr_...).",
                                              show_default=False)]
ApprovalIdOpt = Annotated[str | None, typer.Option(
    "--approval-id", help="Dual control: re-send this request once approval ID is approved.")]
NoteOpt = Annotated[str | None, typer.Option("--note", help="Why (kept in the audit log).")]


def named(accessor: str, name: str | None) -> str:
    """An identity as an approver recognises it: ``alice (acc_7deb...)``."""
    return f"{name} ({accessor})" if name else accessor


def _show(approval: Approval) -> None:
    """Every field an approver decides on: the complete request is printed whole."""
    fields_table([
        ("id", approval.id), ("operation", approval.operation), ("key", approval.key),
        ("requester", named(approval.requester, approval.requester_name)),
        ("state", approval.state),
        ("approvals", f"{approval.approvals} of {approval.required}"),
        ("summary", approval.summary), ("created", approval.created_at),
        ("expires", approval.expires_at), ("consumed", approval.consumed_at),
    ], title=f"approval {approval.id}")
    if approval.request is not None:
        console().print("request (complete):")
        typer.echo(json.dumps(approval.request, indent=2, sort_keys=True, ensure_ascii=False))
    if approval.decisions:
        table(["identity", "decision", "at", "note"],
              [(named(d.identity, d.identity_name), d.decision, d.at, d.note)
               for d in approval.decisions])


@app.command("list")
def list_(
    ctx: typer.Context,
    state: Annotated[str, typer.Option(
        "--state", help="open (default), all, pending, approved, rejected, consumed, expired.")
    ] = "open",
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
) -> None:
    """Requests you may decide (or made yourself), newest first."""
    page = client(ctx).list_approvals(state=state, limit=limit)
    emit(ctx, {"approvals": page.approvals, "next_page_token": page.next_page_token},
         lambda: table(["id", "operation", "key", "requester", "state", "approvals", "expires"],
                       [(a.id, a.operation, a.key, named(a.requester, a.requester_name),
                         a.state, f"{a.approvals}/{a.required}", a.expires_at)
                        for a in page.approvals], drop=("expires", "key", "operation")))


@app.command()
def show(ctx: typer.Context, approval_id: ApprovalIdArg) -> None:
    """Show one request: what it would do, who asked, who decided."""
    approval = client(ctx).get_approval(approval_id)
    emit(ctx, approval, lambda: _show(approval))


@app.command()
def approve(ctx: typer.Context, approval_id: ApprovalIdArg, note: NoteOpt = None) -> None:
    """Approve someone else's request (needs the approve operation on its key)."""
    approval = client(ctx).approve(approval_id, note)
    emit(ctx, approval, lambda: console().print(
        f"{approval.id}: {approval.state} ({approval.approvals} of {approval.required})",
        markup=False))


@app.command()
def reject(ctx: typer.Context, approval_id: ApprovalIdArg, note: NoteOpt = None) -> None:
    """Reject a request: one rejection vetoes it."""
    approval = client(ctx).reject(approval_id, note)
    emit(ctx, approval, lambda: console().print(f"{approval.id}: {approval.state}",
                                                markup=False))


def _show_settings(settings: DualControlSettings) -> None:
    headline = (f"[green]on[/green]: {settings.approvals} approval(s)" if settings.enabled
                else "[yellow]off[/yellow]")
    console().print(f"dual control {headline}")
    fields_table([("operations", settings.operations), ("ttl (s)", int(settings.ttl)),
                  ("config file", settings.config_file), ("stored", settings.stored),
                  ("available", settings.available_operations)])


@dual_control_app.command("show")
def dual_show(ctx: typer.Context) -> None:
    """Show the dual control settings in force."""
    settings = client(ctx).dual_control()
    emit(ctx, settings, lambda: _show_settings(settings))


@dual_control_app.command("set")
def dual_set(
    ctx: typer.Context,
    approvals: Annotated[int, typer.Option(
        "--approvals", min=0, max=16, help="Approvals each guarded request needs (0: off).")],
    operation: Annotated[list[str] | None, typer.Option(
        "--operation", help="A guarded action (repeat); default: all of them.")] = None,
    ttl: Annotated[str | None, typer.Option(
        "--ttl", help="How long an approval request stays usable, e.g. 24h.")] = None,
    approval_id: ApprovalIdOpt = None,
) -> None:
    """Turn dual control on or change it; weakening it needs approval itself."""
    settings = client(ctx).set_dual_control(approvals, operations=operation or None, ttl=ttl,
                                            approval_id=approval_id)
    emit(ctx, settings, lambda: _show_settings(settings))
