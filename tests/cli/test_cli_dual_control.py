"""`keyquorum approval ...` and `keyquorum operator dual-control ...` against a real server."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dual_control_support import Cast, cast
from keyquorum.cli.main import app
from kq_support import ServerProcess

pytestmark = pytest.mark.server
Run = Callable[..., Any]


@pytest.fixture(scope="module")
def people(shared_server: ServerProcess) -> Iterator[Cast]:
    made = cast(shared_server, approvals=None)  # turned on through the CLI below
    yield made
    made.close()


@pytest.fixture
def run(people: Cast) -> Run:
    runner = CliRunner()

    def invoke(token: str, *args: str) -> Any:
        return runner.invoke(app, list(args), env={"KEYQUORUM_ADDR": people.server.addr,
                                                   "KEYQUORUM_TOKEN": token, "COLUMNS": "80"})

    return invoke


def approval_id_of(result: Any) -> str:
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: approval_required: ")
    found = re.search(r"apr_[0-9a-f]{32}", result.stderr)
    assert found, result.stderr
    return found.group(0)


def test_dual_control_from_the_command_line(people: Cast, run: Run, tmp_path: Path) -> None:
    root = people.server.root_token
    turned_on = run(root, "--json", "operator", "dual-control", "set", "--approvals", "2",
                    "--operation", "revoke", "--operation", "policy-put", "--ttl", "2h")
    assert turned_on.exit_code == 0, turned_on.output
    assert json.loads(turned_on.stdout)["operations"] == ["policy-put", "revoke"]
    shown = run(root, "operator", "dual-control", "show")
    assert shown.exit_code == 0 and "2 approval(s)" in shown.stdout

    name = f"cli/dc-{uuid.uuid4().hex[:8]}"
    assert run(people.admin, "key", "create", name, "--spec", "aes-256-gcm").exit_code == 0
    approval_id = approval_id_of(run(people.admin, "key", "revoke", name, "--reason",
                                     "retired", "--note", "moving on"))

    listed = run(people.approvers[0], "--json", "approval", "list")
    assert listed.exit_code == 0, listed.output
    assert approval_id in {a["id"] for a in json.loads(listed.stdout)["approvals"]}
    human = run(people.approvers[0], "approval", "show", approval_id)
    assert human.exit_code == 0 and "moving on" in human.stdout and "0 of 2" in human.stdout
    assert re.search(r"requester +admin \(acc_[0-9a-f]+\)", human.stdout)  # the token's name
    table = run(people.approvers[0], "approval", "list")
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)  # a pipe's width
    assert any(approval_id in line and "admin" in line for line in lines)

    for token in people.approvers[:2]:
        approved = run(token, "approval", "approve", approval_id, "--note", "fine")
        assert approved.exit_code == 0, approved.output
    assert "approved (2 of 2)" in approved.stdout
    again = run(people.approvers[0], "approval", "approve", approval_id)
    assert again.exit_code == 1 and again.stderr.startswith("error: duplicate_approval: ")

    mismatch = run(people.admin, "key", "revoke", name, "--reason", "retired",
                   "--approval-id", approval_id)  # the note is missing: another request
    assert mismatch.stderr.startswith("error: approval_mismatch: ")
    revoked = run(people.admin, "key", "revoke", name, "--reason", "retired", "--note",
                  "moving on", "--approval-id", approval_id)
    assert revoked.exit_code == 0, revoked.output

    policy = tmp_path / "p.json"
    policy.write_text(json.dumps({"rules": [{"keys": "cli/**", "operations": ["read"]}]}))
    policy_id = approval_id_of(run(people.admin, "policy", "put", "cli-dc", str(policy)))
    rejected = run(people.approvers[2], "approval", "reject", policy_id, "--note", "why?")
    assert rejected.exit_code == 0 and "rejected" in rejected.stdout
    refused = run(people.admin, "policy", "put", "cli-dc", str(policy), "--approval-id",
                  policy_id)
    assert refused.stderr.startswith("error: approval_rejected: ")

    off_id = approval_id_of(run(people.admin, "operator", "dual-control", "set",
                                "--approvals", "0"))
    for token in people.approvers[:2]:
        assert run(token, "approval", "approve", off_id).exit_code == 0
    off = run(people.admin, "operator", "dual-control", "set", "--approvals", "0",
              "--approval-id", off_id)
    assert off.exit_code == 0 and "off" in off.stdout
