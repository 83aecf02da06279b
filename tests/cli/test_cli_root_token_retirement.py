"""The documented first hour, as an operator types it: init, make the operators' tokens
as orphans with the root token, revoke the root token, and the operators can still work.

And F13 as the CLI shows it: ``token revoke`` lists what it would take along and asks
before revoking more than the token itself (``--yes`` for scripts).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from keyquorum.cli.main import app

pytestmark = pytest.mark.server


class Cli:
    def __init__(self, addr: str) -> None:
        self.runner = CliRunner()
        self.addr = addr

    def __call__(self, token: str | None, *args: str, input: str | None = None) -> Any:
        env = {"KEYQUORUM_ADDR": self.addr, "KEYQUORUM_TOKEN": token or ""}
        return self.runner.invoke(app, list(args), input=input, env=env)

    def json(self, token: str | None, *args: str) -> Any:
        result = self(token, "--json", *args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


def test_following_the_docs_the_root_token_is_revoked_and_the_operators_keep_working(
        fresh_server) -> None:
    kq = Cli(fresh_server.addr)
    init = kq.json(None, "operator", "init", "--shares", "3", "--threshold", "2")
    root = init["root_token"]
    for share in init["shares"][:2]:
        assert kq(None, "operator", "unseal", share).exit_code == 0

    # SECURITY.md, "Revoking the root token": orphans, made with the root token.
    ops = kq.json(root, "token", "create", "--orphan", "--policy", "operator",
                  "--name", "ops-oncall", "--ttl", "30d")
    auditors = kq.json(root, "token", "create", "--orphan", "--policy", "auditor",
                       "--name", "audit-team")
    assert ops["orphan"] is True and auditors["orphan"] is True
    helper = kq.json(ops["token"], "token", "create", "--policy", "operator",
                     "--name", "ops-helper", "--ttl", "1d")
    refused = kq(ops["token"], "token", "create", "--orphan", "--policy", "operator")
    assert refused.exit_code == 1 and "error: forbidden: " in refused.stderr

    me = kq.json(root, "token", "self")
    shown = kq(root, "token", "self")
    assert me["orphan"] is True and "orphan" in shown.stdout
    assert kq(root, "token", "revoke", me["accessor"]).exit_code == 0  # nothing else dies
    assert kq(root, "token", "self").exit_code == 1

    assert kq.json(ops["token"], "token", "self")["name"] == "ops-oncall"
    assert kq.json(helper["token"], "token", "self")["name"] == "ops-helper"
    assert kq(auditors["token"], "audit", "verify").exit_code == 0
    # A child of a sys:tokens holder that is not root still dies with it (review F13).
    revoked = kq(ops["token"], "token", "revoke", ops["accessor"], "--yes")
    assert revoked.exit_code == 0, revoked.output
    assert helper["accessor"] in revoked.stdout and "ops-helper" in revoked.stdout
    assert kq(helper["token"], "token", "self").exit_code == 1
    assert kq.json(auditors["token"], "token", "self")["orphan"] is True


def test_revoking_a_token_with_children_asks_first_and_without_a_yes_revokes_nothing(
        kq_server) -> None:
    kq = Cli(kq_server.addr)
    root = kq_server.root_token
    parent = kq.json(root, "token", "create", "--policy", "operator", "--name", "parent")
    child = kq.json(parent["token"], "token", "create", "--policy", "operator",
                    "--name", "child")

    listed = kq(root, "token", "revoke", parent["accessor"], "--dry-run")
    assert listed.exit_code == 0 and "would be revoked" in listed.stdout
    assert child["accessor"] in listed.stdout and "child" in listed.stdout
    as_json = kq.json(root, "token", "revoke", parent["accessor"], "--dry-run")
    assert as_json["revoked"] is False and as_json["also_revoked"] == [child["accessor"]]

    unattended = kq(root, "token", "revoke", parent["accessor"])  # stdin is no terminal
    assert unattended.exit_code == 1
    assert "nothing was revoked" in unattended.stderr and "--yes" in unattended.stderr
    assert child["accessor"] in unattended.stderr
    assert kq(child["token"], "token", "self").exit_code == 0

    done = kq.json(root, "token", "revoke", parent["accessor"], "--yes")
    assert done["revoked"] is True and done["also_revoked"] == [child["accessor"]]
    assert kq(child["token"], "token", "self").exit_code == 1
    assert kq(parent["token"], "token", "self").exit_code == 1


def test_at_a_terminal_the_revocation_waits_for_a_yes(kq_server, monkeypatch) -> None:
    import keyquorum.cli.tokens as tokens_cli

    monkeypatch.setattr(tokens_cli, "stdin_is_tty", lambda: True)
    kq = Cli(kq_server.addr)
    root = kq_server.root_token
    parent = kq.json(root, "token", "create", "--policy", "operator", "--name", "parent")
    child = kq.json(parent["token"], "token", "create", "--policy", "operator")

    declined = kq(root, "token", "revoke", parent["accessor"], input="n\n")
    assert declined.exit_code == 1 and "nothing was revoked" in declined.stderr
    assert f"Revoke {parent['accessor']} and the 1 credential it minted?" in declined.stderr
    assert kq(child["token"], "token", "self").exit_code == 0

    accepted = kq(root, "token", "revoke", parent["accessor"], input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert f"token {parent['accessor']}: revoked, with 1 credential" in accepted.stdout
    assert kq(child["token"], "token", "self").exit_code == 1
