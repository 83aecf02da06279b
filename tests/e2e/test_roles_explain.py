"""``keyquorum policy explain`` and ``Client.simulate_policy`` against a real server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from keyquorum.cli.main import app
from keyquorum.client import (
    AsyncClient,
    Client,
    DecidingRule,
    NotFoundError,
    PolicyDecision,
    PolicyRule,
)
from kq_support import ServerProcess

pytestmark = pytest.mark.server

RULES = [
    {"keys": "payments/*", "operations": ["decrypt"], "conditions": {"context_keys": ["tenant"]}},
    {"keys": "payments/root-*", "operations": ["*"], "effect": "deny"},
]


@pytest.fixture(scope="module")
def policy(shared_server: ServerProcess) -> str:
    with Client(shared_server.addr, shared_server.root_token) as kq:
        written = kq.put_policy("explain-pay", RULES)
    assert written.rules[0].conditions == {"context_keys": ["tenant"]}
    return written.name


def words(text: str) -> str:
    """Rich wraps table cells to the terminal: compare the words, not the layout."""
    return " ".join(text.split())


@pytest.fixture
def run(shared_server: ServerProcess) -> Callable[..., Result]:
    runner = CliRunner()
    env = {"KEYQUORUM_ADDR": shared_server.addr, "KEYQUORUM_TOKEN": shared_server.root_token}

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args), env=env)

    return invoke


def test_explain_prints_the_decision_and_the_deciding_rule(run: Callable[..., Result],
                                                           policy: str) -> None:
    allowed = run("policy", "explain", "--operation", "decrypt", "--key", "payments/cards",
                  "--policy", policy, "--context", "tenant=acme", "-c", "region=eu")
    assert allowed.exit_code == 0, allowed.output
    assert allowed.stdout.startswith("allowed: decrypt payments/cards")
    assert "policy explain-pay rule 0: allow decrypt on payments/* when context_keys: tenant" \
        in words(allowed.stdout)
    denied = run("policy", "explain", "-o", "decrypt", "-k", "payments/root-ca", "-p", policy,
                 "-c", "tenant=acme")
    assert denied.exit_code == 0, denied.output
    assert denied.stdout.startswith("denied: decrypt payments/root-ca")
    assert "policy explain-pay rule 1: deny * on payments/root-*" in words(denied.stdout)
    unmet = run("policy", "explain", "-o", "decrypt", "-k", "payments/cards", "-p", policy)
    assert unmet.stdout.startswith("denied: decrypt payments/cards")
    assert "no rule allows it (denied by default)" in words(unmet.stdout)
    assert "(failed: context_keys)" in words(unmet.stdout)


def test_explain_json_is_the_servers_answer(run: Callable[..., Result], policy: str,
                                            shared_server: ServerProcess) -> None:
    with Client(shared_server.addr, shared_server.root_token) as kq:
        token = kq.create_token([policy, "key-admin"])
    result = run("--json", "policy", "explain", "--operation", "rotate", "--key", "x",
                 "--accessor", token.accessor)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "allowed": True, "policies": [policy, "key-admin"], "unmet": [],
        "rule": {"policy": "key-admin", "index": 0, "keys": "**", "effect": "allow",
                 "operations": ["create", "read", "list", "update", "rotate", "disable",
                                "enable", "revoke", "delete"]}}


@pytest.mark.parametrize(("args", "code", "complaint"), [
    (["-o", "read", "-k", "k"], 2, "give exactly one of --accessor or --policy"),
    (["-o", "read", "-k", "k", "-p", "x", "--accessor", "acc_0000000000000000"], 2,
     "give exactly one of --accessor or --policy"),
    (["-o", "read", "-k", "k", "-p", "explain-pay", "-c", "novalue"], 2, "key=value"),
    (["-o", "fly", "-k", "k", "-p", "explain-pay"], 1,
     "error: invalid_request: operation must be one of the policy operations"),
    (["-o", "read", "-k", "k", "--accessor", "acc_0000000000000000"], 1, "error: not_found:"),
])
def test_explain_refuses_bad_questions(run: Callable[..., Result], policy: str,
                                       args: list[str], code: int, complaint: str) -> None:
    result = run("policy", "explain", *args)
    assert result.exit_code == code, result.output
    assert complaint in result.output


def test_policy_get_shows_conditions_and_builtins(run: Callable[..., Result],
                                                  policy: str) -> None:
    shown = run("policy", "get", policy)
    assert shown.exit_code == 0 and "context_keys: tenant" in words(shown.stdout)
    role = run("policy", "get", "auditor")
    assert "built in, read-only" in words(role.stdout) and "audit:read" in role.stdout
    listed = run("--json", "policy", "list")
    names = {p["name"]: p["builtin"] for p in json.loads(listed.stdout)["policies"]}
    assert names["key-user"] is True and names[policy] is False


def test_sdk_simulate_policy(shared_server: ServerProcess, policy: str) -> None:
    with Client(shared_server.addr, shared_server.root_token) as kq:
        decision = kq.simulate_policy("decrypt", "payments/cards", policies=[policy],
                                      context={"tenant": "a"}, client="10.0.0.1")
        assert decision == PolicyDecision(
            allowed=True, policies=(policy,), rule=DecidingRule(
                policy=policy, index=0, rule=PolicyRule(
                    "payments/*", ("decrypt",), "allow", {"context_keys": ["tenant"]})))
        denied = kq.simulate_policy("decrypt", "payments/cards", policies=[policy])
        assert not denied.allowed and denied.rule is None
        assert [(u.index, u.failed) for u in denied.unmet] == [(0, ("context_keys",))]
        with pytest.raises(NotFoundError):
            kq.simulate_policy("read", "k", token_accessor="acc_0000000000000000")
        with pytest.raises(ValueError, match="exactly one of token_accessor or policies"):
            kq.simulate_policy("read", "k")

    async def asynchronous() -> Any:
        async with AsyncClient(shared_server.addr, shared_server.root_token) as kq:
            return await kq.simulate_policy("sys:seal", policies=["operator"])

    decision = asyncio.run(asynchronous())
    assert decision.allowed and decision.rule.policy == "operator"
