"""``keyquorum policy``: the rules that say which token may do what to which keys."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from ..client import DecidingRule, Policy, PolicyDecision
from ._common import client, console, emit, fields_table, parse_pairs, read_input, table
from .approvals import ApprovalIdOpt

app = typer.Typer(help="Write, read, list and delete policies.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="Policy name.", show_default=False)]


def _rules(document: bytes) -> list[dict[str, Any]]:
    try:
        body = json.loads(document)
    except ValueError as exc:
        raise typer.BadParameter(f"the policy is not valid JSON: {exc}") from exc
    rules = body.get("rules") if isinstance(body, dict) else body
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        raise typer.BadParameter('the policy must be {"rules": [{...}, ...]} or a list of rules')
    return rules


def _conditions(conditions: Any) -> str:
    if not conditions:
        return "-"
    return "; ".join(f"{name}: {', '.join(map(str, values))}"
                     for name, values in conditions.items())


def _show(policy: Policy) -> None:
    title = f"policy {policy.name}" + (" (built in, read-only)" if policy.builtin else "")
    table(["keys", "operations", "effect", "conditions"],
          [(r.keys, r.operations, r.effect, _conditions(r.conditions)) for r in policy.rules],
          title=title)
    if policy.description:
        console().print(policy.description, markup=False)


@app.command()
def put(
    ctx: typer.Context,
    name: NameArg,
    file: Annotated[str, typer.Argument(
        help='JSON {"rules": [{"keys": "glob", "operations": [...], "effect": "allow"}]}; '
             "'-' for stdin.", show_default=False)],
    approval_id: ApprovalIdOpt = None,
) -> None:
    """Create or replace a policy from a JSON file."""
    policy = client(ctx).put_policy(name, _rules(read_input(file)), approval_id=approval_id)
    emit(ctx, policy, lambda: console().print(
        f"policy {name}: written ({len(policy.rules)} rules)", markup=False))


@app.command()
def get(ctx: typer.Context, name: NameArg) -> None:
    """Show a policy's rules."""
    policy = client(ctx).get_policy(name)
    emit(ctx, policy, lambda: _show(policy))


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """List the policies."""
    found = client(ctx).list_policies()
    emit(ctx, {"policies": found}, lambda: table(
        ["name", "rules", "built in"], [(p.name, len(p.rules), p.builtin) for p in found]))


@app.command()
def delete(ctx: typer.Context, name: NameArg, approval_id: ApprovalIdOpt = None) -> None:
    """Delete a policy."""
    client(ctx).delete_policy(name, approval_id=approval_id)
    emit(ctx, {"name": name, "deleted": True},
         lambda: console().print(f"policy {name}: deleted", markup=False))


def _rule_line(ref: DecidingRule) -> str:
    rule = ref.rule
    line = f"policy {ref.policy} rule {ref.index}: {rule.effect} {', '.join(rule.operations)} " \
           f"on {rule.keys}"
    if rule.conditions:
        line += f" when {_conditions(rule.conditions)}"
    return line


def _show_decision(decision: PolicyDecision, operation: str, key: str | None) -> None:
    out = console()
    target = f"{operation} {key}" if key else operation
    if decision.allowed:
        out.print(f"[bold green]allowed[/bold green]: {target}", highlight=False)
    else:
        out.print(f"[bold red]denied[/bold red]: {target}", highlight=False)
    rows: list[tuple[str, Any]] = [("policies", decision.policies)]
    if decision.rule is not None:
        rows.append(("decided by", _rule_line(decision.rule)))
    else:
        rows.append(("decided by", "no rule allows it (denied by default)"))
    for unmet in decision.unmet:
        rows.append(("conditions not met",
                     f"{_rule_line(unmet)} (failed: {', '.join(unmet.failed)})"))
    fields_table(rows)


@app.command()
def explain(
    ctx: typer.Context,
    operation: Annotated[str, typer.Option(
        "--operation", "-o", help="The operation, e.g. decrypt, create, sys:seal.",
        show_default=False)],
    key: Annotated[str | None, typer.Option(
        "--key", "-k", help="The key name (leave out for operations on no key).")] = None,
    accessor: Annotated[str | None, typer.Option(
        "--accessor", "-a", help="Ask about this token (its accessor).")] = None,
    policy: Annotated[list[str] | None, typer.Option(
        "--policy", "-p", help="Ask about a holder of these policies (repeat).")] = None,
    context: Annotated[list[str] | None, typer.Option(
        "--context", "-c", help="Encryption context key=value (repeat).")] = None,
    spec: Annotated[str | None, typer.Option(
        "--spec", help="The spec a create asks for.")] = None,
    client_addr: Annotated[str | None, typer.Option(
        "--client", help="The client's IP address (source conditions).")] = None,
) -> None:
    """Would this token (or these policies) be allowed, and which rule decides?

    Exit status 0 whether allowed or denied; --json gives the server's answer.
    """
    if (accessor is None) == (not policy):
        raise typer.BadParameter("give exactly one of --accessor or --policy")
    decision = client(ctx).simulate_policy(
        operation, key, token_accessor=accessor, policies=policy or None,
        context=parse_pairs(context, "--context"), spec=spec, client=client_addr)
    emit(ctx, decision.to_json(), lambda: _show_decision(decision, operation, key))
