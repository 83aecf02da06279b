"""Every dual-control refusal, through the real app, each with its stable error code."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dual_control_support import Cast, cast, needs_approval
from http_helpers import assert_error, create_key, get_key, ok, unique
from inprocess_server import InProcessServer

BODY = {"reason": "compromised", "note": "badge cloned"}
UNKNOWN = "apr_" + "0" * 32


@pytest.fixture(scope="module")
def people(shared_inprocess: InProcessServer) -> Iterator[Cast]:
    made = cast(shared_inprocess, approvals=2)
    yield made
    made.close()


def pending_revoke(people: Cast) -> tuple[str, str]:
    """A fresh key with a revoke request waiting for approval: (key, approval id)."""
    admin = people.http(people.admin)
    name = unique("dcr/key")
    create_key(admin, name, "aes-256-gcm")
    return name, needs_approval(admin.post(f"/v1/keys/{name}/revoke", json=BODY))


def resend(people: Cast, name: str, approval_id: str, token: str | None = None,
           **changes: object) -> object:
    return people.http(token or people.admin).post(
        f"/v1/keys/{name}/revoke", json={**BODY, **changes, "approval_id": approval_id})


def test_self_approval_is_refused(people: Cast) -> None:
    root = people.http()
    name = unique("dcr/self")
    create_key(root, name, "aes-256-gcm")
    approval_id = needs_approval(root.post(f"/v1/keys/{name}/revoke", json=BODY))
    for decision in ("approve", "reject"):
        assert_error(root.post(f"/v1/approvals/{approval_id}/{decision}"), 403, "self_approval")
    assert ok(root.get(f"/v1/approvals/{approval_id}"))["decisions"] == []


def test_double_approval_by_one_identity_is_refused(people: Cast) -> None:
    _name, approval_id = pending_revoke(people)
    approver = people.http(people.approvers[0])
    ok(approver.post(f"/v1/approvals/{approval_id}/approve"))
    assert_error(approver.post(f"/v1/approvals/{approval_id}/approve"), 409,
                 "duplicate_approval")
    assert_error(approver.post(f"/v1/approvals/{approval_id}/reject"), 409,
                 "duplicate_approval")
    shown = ok(approver.get(f"/v1/approvals/{approval_id}"))
    assert (shown["state"], shown["approvals"]) == ("pending", 1)


def test_reuse_of_a_consumed_approval_is_refused(people: Cast) -> None:
    name, approval_id = pending_revoke(people)
    people.approve(approval_id)
    ok(resend(people, name, approval_id))
    error = assert_error(resend(people, name, approval_id), 409, "approval_consumed")
    assert approval_id in error["message"]
    assert_error(people.http(people.approvers[2]).post(f"/v1/approvals/{approval_id}/reject"),
                 409, "approval_consumed")


def test_a_rejected_request_cannot_run_or_be_approved(people: Cast) -> None:
    name, approval_id = pending_revoke(people)
    ok(people.http(people.approvers[0]).post(f"/v1/approvals/{approval_id}/approve"))
    rejected = ok(people.http(people.approvers[1]).post(
        f"/v1/approvals/{approval_id}/reject", json={"note": "no change window"}))
    assert rejected["state"] == "rejected"
    assert rejected["decisions"][1]["note"] == "no change window"
    assert_error(resend(people, name, approval_id), 409, "approval_rejected")
    assert_error(people.http(people.approvers[2]).post(f"/v1/approvals/{approval_id}/approve"),
                 409, "approval_rejected")
    assert get_key(people.http(people.admin), name)["versions"][0]["state"] == "active"


def test_different_parameters_key_or_action_are_refused(people: Cast) -> None:
    name, approval_id = pending_revoke(people)
    people.approve(approval_id)
    assert_error(resend(people, name, approval_id, note="something else"), 403,
                 "approval_mismatch")
    assert_error(resend(people, name, approval_id, reason="superseded"), 403,
                 "approval_mismatch")
    assert_error(resend(people, name, approval_id, version=1), 403, "approval_mismatch")
    other = unique("dcr/other")
    create_key(people.http(people.admin), other, "aes-256-gcm")
    assert_error(resend(people, other, approval_id), 403, "approval_mismatch")
    assert_error(people.http(people.admin).post(f"/v1/keys/{name}/schedule-deletion",
                                                json={"approval_id": approval_id}),
                 403, "approval_mismatch")
    assert get_key(people.http(people.admin), other)["versions"][0]["state"] == "active"
    ok(resend(people, name, approval_id))  # the approved request itself still runs


def test_a_different_requester_cannot_use_the_approval(people: Cast) -> None:
    name, approval_id = pending_revoke(people)
    people.approve(approval_id)
    assert_error(resend(people, name, approval_id, token=people.other_admin), 403,
                 "approval_not_requester")
    assert_error(resend(people, name, approval_id, token=people.server.root_token), 403,
                 "approval_not_requester")
    ok(resend(people, name, approval_id))


def test_unknown_approval_ids_are_not_found(people: Cast) -> None:
    name, _approval_id = pending_revoke(people)
    assert_error(resend(people, name, UNKNOWN), 404, "not_found")
    approver = people.http(people.approvers[0])
    for path in (f"/v1/approvals/{UNKNOWN}/approve", f"/v1/approvals/{UNKNOWN}/reject"):
        assert_error(approver.post(path), 404, "not_found")
    assert_error(approver.get(f"/v1/approvals/{UNKNOWN}"), 404, "not_found")


def test_an_identity_without_approve_cannot_decide_or_see(people: Cast) -> None:
    _name, approval_id = pending_revoke(people)
    outsider = people.http(people.outsider)
    for decision in ("approve", "reject"):
        assert_error(outsider.post(f"/v1/approvals/{approval_id}/{decision}"), 403, "forbidden")
    assert_error(outsider.get(f"/v1/approvals/{approval_id}"), 403, "forbidden")
    assert ok(outsider.get("/v1/approvals"))["approvals"] == []
    # The requester (who holds no approve) still sees their own request.
    mine = ok(people.http(people.admin).get("/v1/approvals"))["approvals"]
    assert approval_id in {a["id"] for a in mine}


def test_approve_is_scoped_by_the_keys_of_the_rule(people: Cast) -> None:
    # Writing the policy and minting an approver are themselves dual-controlled now.
    people.with_approval(None, "PUT", "/v1/policies/dcr-team-a", {
        "rules": [{"keys": "dcr/team-a/**", "operations": ["approve"]}]})
    team_a = str(people.with_approval(None, "POST", "/v1/auth/tokens", {
        "policies": ["dcr-team-a"], "name": "team-a-approver"})["token"])
    admin = people.http(people.admin)
    mine, theirs = unique("dcr/team-a/k"), unique("dcr/team-b/k")
    for name in (mine, theirs):
        create_key(admin, name, "aes-256-gcm")
    in_scope = needs_approval(admin.post(f"/v1/keys/{mine}/revoke", json=BODY))
    out_of_scope = needs_approval(admin.post(f"/v1/keys/{theirs}/revoke", json=BODY))
    approver = people.http(team_a)
    ok(approver.post(f"/v1/approvals/{in_scope}/approve"))
    assert_error(approver.post(f"/v1/approvals/{out_of_scope}/approve"), 403, "forbidden")
    visible = {a["id"] for a in ok(approver.get("/v1/approvals"))["approvals"]}
    assert in_scope in visible and out_of_scope not in visible


def test_malformed_approval_fields_are_invalid_requests(people: Cast) -> None:
    name, approval_id = pending_revoke(people)
    admin = people.http(people.admin)
    assert_error(admin.post(f"/v1/keys/{name}/revoke", json={**BODY, "approval_id": 7}), 400,
                 "invalid_request")
    assert_error(admin.post(f"/v1/keys/{name}/revoke", params={"approval_id": UNKNOWN},
                            json={**BODY, "approval_id": approval_id}), 400, "invalid_request")
    approver = people.http(people.approvers[0])
    assert_error(approver.post(f"/v1/approvals/{approval_id}/approve", json={"vote": "yes"}),
                 400, "invalid_request")
    assert_error(approver.post(f"/v1/approvals/{approval_id}/approve",
                               json={"note": "x" * 1025}), 400, "invalid_request")
    assert_error(approver.get("/v1/approvals", params={"state": "maybe"}), 400,
                 "invalid_request")
    assert_error(approver.get("/v1/approvals", params={"limit": 0}), 400, "invalid_request")
    assert ok(approver.get(f"/v1/approvals/{approval_id}"))["decisions"] == []


def test_dual_control_settings_need_their_operation_and_are_parsed_strictly(
        people: Cast) -> None:
    assert ok(people.http(people.outsider).get("/v1/sys/dual-control"))["approvals"] == 2
    assert_error(people.http(people.approvers[0]).get("/v1/sys/dual-control"), 403,
                 "forbidden")
    assert_error(people.http(people.outsider).put("/v1/sys/dual-control",
                                                  json={"approvals": 3}), 403, "forbidden")
    admin = people.http(people.admin)
    for body in ({"approvals": 99}, {"approvals": 2, "operations": ["rotate"]},
                 {"approvals": 2, "quorum": 2}, {"approvals": 2, "ttl": "1s"}):
        assert_error(admin.put("/v1/sys/dual-control", json=body), 400, "invalid_request")
    described = ok(admin.get("/v1/sys/dual-control"))
    assert described["approvals"] == 2 and described["config_file"] is None
    assert "token-create-privileged" in described["available_operations"]


def test_expired_approvals_cannot_be_decided_or_used(people: Cast) -> None:
    name, approval_id = pending_revoke(people)
    people.approve(approval_id)
    waiting_name, waiting_id = pending_revoke(people)
    people.server.advance_clock(24 * 3600 + 1)
    assert_error(resend(people, name, approval_id), 409, "approval_expired")
    assert_error(people.http(people.approvers[0]).post(f"/v1/approvals/{waiting_id}/approve"),
                 409, "approval_expired")
    assert_error(resend(people, waiting_name, waiting_id), 409, "approval_expired")
    shown = ok(people.http(people.admin).get(f"/v1/approvals/{approval_id}"))
    assert shown["state"] == "expired"
    expired = ok(people.http(people.approvers[0]).get("/v1/approvals",
                                                      params={"state": "expired"}))
    assert {approval_id, waiting_id} <= {a["id"] for a in expired["approvals"]}
    open_now = ok(people.http(people.approvers[0]).get("/v1/approvals"))["approvals"]
    assert approval_id not in {a["id"] for a in open_now}


def test_a_refused_decision_is_audited_against_the_approvals_key(people: Cast) -> None:
    """The service finds the key in the approval; its refusal record must still name it."""
    root = people.http()
    name = unique("dcr/audited")
    create_key(root, name, "aes-256-gcm")
    approval_id = needs_approval(root.post(f"/v1/keys/{name}/revoke", json=BODY))
    refused = root.post(f"/v1/approvals/{approval_id}/approve")
    assert_error(refused, 403, "self_approval")

    records = ok(root.get("/v1/audit", params={"limit": 100}))["records"]
    mine = [r for r in records if r["request_id"] == refused.headers["x-request-id"]]
    assert len(mine) == 1 and mine[0]["outcome"] == "denied"
    assert mine[0]["key"] == name
