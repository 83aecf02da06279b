"""Dual control through the real app: request, 403 approval_required, approvals, one run."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from dual_control_support import Cast, cast, needs_approval
from http_helpers import assert_error, create_key, get_key, ok, unique
from inprocess_server import InProcessServer

pytestmark = pytest.mark.postgresql


@pytest.fixture(scope="module")
def people(shared_inprocess: InProcessServer) -> Iterator[Cast]:
    made = cast(shared_inprocess, approvals=2)
    yield made
    made.close()


def audit_of(people: Cast, key: str) -> list[dict]:
    with people.server.client() as root:
        return list(ok(root.get("/v1/audit", params={"key": key, "limit": 1000}))["records"])


def test_revoke_waits_for_two_approvals_then_runs_exactly_once(people: Cast) -> None:
    admin = people.http(people.admin)
    name = unique("dc/revoke")
    create_key(admin, name, "aes-256-gcm")
    body = {"reason": "compromised", "note": "laptop stolen"}

    approval_id = needs_approval(admin.post(f"/v1/keys/{name}/revoke", json=body))
    assert get_key(admin, name)["versions"][0]["state"] == "active"  # nothing ran

    listed = ok(people.http(people.approvers[0]).get("/v1/approvals"))["approvals"]
    mine = next(a for a in listed if a["id"] == approval_id)
    assert mine["operation"] == "revoke" and mine["key"] == name
    assert mine["summary"] == {"reason": "compromised", "note": "laptop stolen"}
    assert (mine["state"], mine["approvals"], mine["required"]) == ("pending", 0, 2)
    assert mine["requester"] == ok(admin.get("/v1/auth/tokens/self"))["accessor"]
    assert mine["expires_at"] and "request_hash" not in mine

    first = ok(people.http(people.approvers[0]).post(
        f"/v1/approvals/{approval_id}/approve", json={"note": "ticket 42"}))
    assert (first["state"], first["approvals"]) == ("pending", 1)
    # One approval of two is not enough: the re-send still answers approval_required.
    resent = admin.post(f"/v1/keys/{name}/revoke", json={**body, "approval_id": approval_id})
    assert needs_approval(resent) == approval_id
    assert resent.json()["error"]["approvals"] == 1

    second = ok(people.http(people.approvers[1]).post(f"/v1/approvals/{approval_id}/approve"))
    assert (second["state"], second["approvals"]) == ("approved", 2)

    revoked = ok(admin.post(f"/v1/keys/{name}/revoke",
                            json={**body, "approval_id": approval_id}))
    assert revoked["versions"][0]["state"] == "compromised"
    again = admin.post(f"/v1/keys/{name}/revoke", json={**body, "approval_id": approval_id})
    assert_error(again, 409, "approval_consumed")

    shown = ok(admin.get(f"/v1/approvals/{approval_id}"))
    assert shown["state"] == "consumed" and shown["consumed_at"]

    records = audit_of(people, name)
    asked = [r for r in records if r["error_code"] == "approval_required"]
    assert asked[0]["outcome"] == "denied" and asked[0]["operation"] == "revoke"
    assert asked[0]["detail"]["approval_id"] == approval_id
    decided = [r for r in records if r["operation"] == "approve" and r["outcome"] == "ok"]
    assert [r["detail"]["approval_id"] for r in decided] == [approval_id] * 2
    assert {r["detail"].get("note") for r in decided} == {"ticket 42", None}
    ran = [r for r in records if r["operation"] == "revoke" and r["outcome"] == "ok"]
    assert len(ran) == 1 and ran[0]["detail"]["approval_id"] == approval_id
    assert ran[0]["detail"]["dual_control"] == "approved"
    reused = [r for r in records if r["error_code"] == "approval_consumed"]
    assert len(reused) == 1


def test_schedule_deletion_is_guarded_too(people: Cast) -> None:
    admin = people.http(people.admin)
    name = unique("dc/delete")
    create_key(admin, name, "aes-256-gcm")
    approval_id = needs_approval(admin.post(f"/v1/keys/{name}/schedule-deletion",
                                            json={"days": 7}))
    summary = ok(admin.get(f"/v1/approvals/{approval_id}"))["summary"]
    assert summary == {"days": "7"}
    people.approve(approval_id)
    # The approval is for 7 days; 8 days is another request.
    assert_error(admin.post(f"/v1/keys/{name}/schedule-deletion",
                            json={"days": 8, "approval_id": approval_id}),
                 403, "approval_mismatch")
    scheduled = ok(admin.post(f"/v1/keys/{name}/schedule-deletion",
                              json={"days": 7, "approval_id": approval_id}))
    assert scheduled["state"] == "destroy-scheduled" and scheduled["destroy_at"]


def test_root_token_needs_approval_like_anyone(people: Cast) -> None:
    root = people.http()
    name = unique("dc/root")
    create_key(root, name, "aes-256-gcm")
    approval_id = needs_approval(root.post(f"/v1/keys/{name}/revoke",
                                           json={"reason": "retired"}))
    # Root holds every operation, approve included, but never for its own request.
    assert_error(root.post(f"/v1/approvals/{approval_id}/approve"), 403, "self_approval")
    people.approve(approval_id)
    revoked = ok(root.post(f"/v1/keys/{name}/revoke",
                           json={"reason": "retired", "approval_id": approval_id}))
    assert revoked["versions"][0]["state"] == "deactivated"


def test_operations_outside_the_set_are_not_guarded(people: Cast) -> None:
    admin = people.http(people.admin)
    name = unique("dc/free")
    create_key(admin, name, "aes-256-gcm")
    assert ok(admin.post(f"/v1/keys/{name}/rotate"))["primary_version"] == 2
    assert ok(admin.post(f"/v1/keys/{name}/disable"))["state"] == "disabled"
    assert ok(admin.post(f"/v1/keys/{name}/enable"))["state"] == "enabled"


def test_two_concurrent_resends_run_once(people: Cast) -> None:
    admin_token = people.admin
    name = unique("dc/race")
    create_key(people.http(admin_token), name, "aes-256-gcm")
    body = {"reason": "superseded"}
    approval_id = needs_approval(people.http(admin_token).post(f"/v1/keys/{name}/revoke",
                                                               json=body))
    people.approve(approval_id)
    start = threading.Barrier(6)
    statuses: list[tuple[int, str]] = []

    def resend() -> None:
        with people.server.client(admin_token) as http:
            start.wait()
            answer = http.post(f"/v1/keys/{name}/revoke",
                               json={**body, "approval_id": approval_id})
            code = "" if answer.status_code == 200 else answer.json()["error"]["code"]
            statuses.append((answer.status_code, code))

    threads = [threading.Thread(target=resend) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [(200, "")] + [(409, "approval_consumed")] * 5
    ran = [r for r in audit_of(people, name)
           if r["operation"] == "revoke" and r["outcome"] == "ok"]
    assert len(ran) == 1


def test_an_approved_request_that_fails_is_not_spent(people: Cast) -> None:
    admin = people.http(people.admin)
    name = unique("dc/retry")
    create_key(admin, name, "aes-256-gcm")
    deletion = needs_approval(admin.post(f"/v1/keys/{name}/schedule-deletion", json={}))
    revoke = needs_approval(admin.post(f"/v1/keys/{name}/revoke", json={"reason": "retired"}))
    people.approve(deletion)
    people.approve(revoke)
    ok(admin.post(f"/v1/keys/{name}/schedule-deletion", json={"approval_id": deletion}))
    # The key is now scheduled for deletion, so the approved revoke fails: nothing ran,
    # and the approval stays usable.
    assert_error(admin.post(f"/v1/keys/{name}/revoke",
                            json={"reason": "retired", "approval_id": revoke}), 409, "key_state")
    assert ok(admin.get(f"/v1/approvals/{revoke}"))["state"] == "approved"
    ok(admin.post(f"/v1/keys/{name}/cancel-deletion"))
    ok(admin.post(f"/v1/keys/{name}/revoke", json={"reason": "retired", "approval_id": revoke}))
    assert ok(admin.get(f"/v1/approvals/{revoke}"))["state"] == "consumed"


def test_policy_changes_need_approval_and_delete_takes_it_in_the_query(people: Cast) -> None:
    admin = people.http(people.admin)
    policy = {"rules": [{"keys": "dc/**", "operations": ["encrypt"]}]}
    approval_id = needs_approval(admin.put("/v1/policies/dc-new", json=policy))
    shown = ok(admin.get(f"/v1/approvals/{approval_id}"))
    assert shown["operation"] == "policy-put" and shown["key"] is None
    assert shown["summary"]["policy"] == "dc-new" and "encrypt" in shown["summary"]["rules"]
    assert_error(admin.get("/v1/policies/dc-new"), 404, "not_found")
    people.approve(approval_id)
    # The approval names the policy: it cannot write another one.
    assert_error(admin.put("/v1/policies/dc-other", json={**policy, "approval_id": approval_id}),
                 403, "approval_mismatch")
    ok(admin.put("/v1/policies/dc-new", json={**policy, "approval_id": approval_id}))
    assert ok(admin.get("/v1/policies/dc-new"))["rules"][0]["keys"] == "dc/**"

    delete_id = needs_approval(admin.delete("/v1/policies/dc-new"))
    assert ok(admin.get(f"/v1/approvals/{delete_id}"))["operation"] == "policy-delete"
    people.approve(delete_id)
    ok(admin.delete("/v1/policies/dc-new", params={"approval_id": delete_id}))
    assert_error(admin.get("/v1/policies/dc-new"), 404, "not_found")
    # A policy that is not there never becomes an approval request.
    assert_error(admin.delete("/v1/policies/dc-never"), 404, "not_found")


def test_tokens_that_grant_sys_or_approve_need_approval_others_do_not(people: Cast) -> None:
    root = people.http()
    plain = ok(root.post("/v1/auth/tokens", json={"policies": ["dc-user"], "ttl": "1h"}))
    assert plain["token"].startswith("kq_")
    for policies in (["dc-admin"], ["dc-approver"], ["dc-reader"], ["root"]):
        body = {"policies": policies, "ttl": "1h", "name": "privileged"}
        approval_id = needs_approval(root.post("/v1/auth/tokens", json=body))
        shown = ok(root.get(f"/v1/approvals/{approval_id}"))
        assert shown["operation"] == "token-create-privileged"
        assert shown["summary"] == {"policies": f'["{policies[0]}"]', "ttl": "1h",
                                    "name": "privileged"}
        people.approve(approval_id)
        made = ok(root.post("/v1/auth/tokens", json={**body, "approval_id": approval_id}))
        assert made["policies"] == policies and made["token"].startswith("kq_")


def test_lowering_raising_or_turning_off_needs_approval(people: Cast) -> None:
    admin = people.http(people.admin)
    # Raising could lock guarded actions: it is guarded too (review F8).
    raise_id = needs_approval(admin.put("/v1/sys/dual-control", json={"approvals": 3}), 2)
    assert ok(admin.get("/v1/sys/dual-control"))["approvals"] == 2  # unchanged
    people.approve(raise_id)
    raised = ok(admin.put("/v1/sys/dual-control", json={"approvals": 3,
                                                        "approval_id": raise_id}))
    assert raised["approvals"] == 3 and raised["enabled"] is True
    lower_id = needs_approval(admin.put("/v1/sys/dual-control", json={"approvals": 2}), 3)
    assert ok(admin.get(f"/v1/approvals/{lower_id}"))["operation"] == "dual-control-change"
    assert ok(admin.get("/v1/sys/dual-control"))["approvals"] == 3  # unchanged
    people.approve(lower_id, 3)
    lowered = ok(admin.put("/v1/sys/dual-control", json={"approvals": 2,
                                                         "approval_id": lower_id}))
    assert lowered["approvals"] == 2

    off_id = needs_approval(admin.put("/v1/sys/dual-control", json={"approvals": 0}))
    people.approve(off_id)
    assert ok(admin.put("/v1/sys/dual-control",
                        json={"approvals": 0, "approval_id": off_id}))["enabled"] is False
    # Off: guarded actions run at once.
    name = unique("dc/off")
    create_key(admin, name, "aes-256-gcm")
    ok(admin.post(f"/v1/keys/{name}/revoke", json={"reason": "retired"}))
    # Turning it back on needs nobody's approval.
    assert ok(admin.put("/v1/sys/dual-control", json={"approvals": 2}))["enabled"] is True
    # Removing an action from the set is weakening too.
    narrowed = admin.put("/v1/sys/dual-control", json={"approvals": 2, "operations": ["revoke"]})
    needs_approval(narrowed)
