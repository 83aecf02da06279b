"""Approvals name people as approvers know them: the token's name next to its accessor."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dual_control_support import Cast, cast, needs_approval
from http_helpers import create_key, ok, unique
from inprocess_server import InProcessServer
from keyquorum.client import Approval


@pytest.fixture(scope="module")
def people(shared_inprocess: InProcessServer) -> Iterator[Cast]:
    made = cast(shared_inprocess, approvals=2)
    yield made
    made.close()


def test_list_show_and_decisions_carry_the_token_names(people: Cast) -> None:
    admin = people.http(people.admin)
    name = unique("dc/named")
    create_key(admin, name, "aes-256-gcm")
    approval_id = needs_approval(admin.post(f"/v1/keys/{name}/revoke",
                                            json={"reason": "superseded"}))
    approver = people.http(people.approvers[0])
    decided = ok(approver.post(f"/v1/approvals/{approval_id}/approve"))
    assert decided["requester_name"] == "admin"
    assert decided["requester"] == ok(admin.get("/v1/auth/tokens/self"))["accessor"]
    assert decided["decisions"][0]["identity_name"] == "approver-0"
    assert decided["decisions"][0]["identity"].startswith("acc_")

    listed = ok(approver.get("/v1/approvals"))["approvals"]
    assert next(a for a in listed if a["id"] == approval_id)["requester_name"] == "admin"
    shown = ok(approver.get(f"/v1/approvals/{approval_id}"))
    assert Approval.from_json(shown).requester_name == "admin"  # and the SDK reads it
    assert Approval.from_json(shown).decisions[0].identity_name == "approver-0"
