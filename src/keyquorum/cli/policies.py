"""``keyquorum policy``: the rules that say which token may do what to which keys."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from ..client import Policy
from ._common import client, console, emit, read_input, table

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


def _show(policy: Policy) -> None:
    table(["keys", "operations", "effect"],
          [(r.keys, r.operations, r.effect) for r in policy.rules], title=f"policy {policy.name}")


@app.command()
def put(
    ctx: typer.Context,
    name: NameArg,
    file: Annotated[str, typer.Argument(
        help='JSON {"rules": [{"keys": "glob", "operations": [...], "effect": "allow"}]}; '
             "'-' for stdin.", show_default=False)],
) -> None:
    """Create or replace a policy from a JSON file."""
    policy = client(ctx).put_policy(name, _rules(read_input(file)))
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
        ["name", "rules"], [(p.name, len(p.rules)) for p in found]))


@app.command()
def delete(ctx: typer.Context, name: NameArg) -> None:
    """Delete a policy."""
    client(ctx).delete_policy(name)
    emit(ctx, {"name": name, "deleted": True},
         lambda: console().print(f"policy {name}: deleted", markup=False))
