"""The SDK's dual control: typed approvals, one exception per refusal, approval_id re-sends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

import keyquorum.client as sdk
from dual_control_support import Cast, cast
from http_helpers import unique
from inprocess_server import InProcessServer
from keyquorum.client import _admin_calls as admin
from keyquorum.client import _approvals as dual
from keyquorum.client import _protocol as api


@pytest.mark.parametrize(("code", "status", "cls", "parent"), [
    ("self_approval", 403, sdk.SelfApprovalError, sdk.ForbiddenError),
    ("approval_mismatch", 403, sdk.ApprovalMismatchError, sdk.ForbiddenError),
    ("approval_not_requester", 403, sdk.ApprovalNotRequesterError, sdk.ForbiddenError),
    ("duplicate_approval", 409, sdk.DuplicateApprovalError, sdk.ConflictError),
    ("approval_consumed", 409, sdk.ApprovalConsumedError, sdk.ConflictError),
    ("approval_expired", 409, sdk.ApprovalExpiredError, sdk.ConflictError),
    ("approval_rejected", 409, sdk.ApprovalRejectedError, sdk.ConflictError),
])
def test_each_refusal_code_raises_its_own_class(code: str, status: int, cls: type,
                                                parent: type) -> None:
    body = json.dumps({"error": {"code": code, "message": "the rule"}}).encode()
    with pytest.raises(cls) as caught:
        api.finish(dual.get_approval("apr_1"), status, "r-1", body)
    assert isinstance(caught.value, parent) and caught.value.code == code
    assert cls.http_status == status


def test_requests_carry_the_approval_id_where_the_server_takes_it() -> None:
    assert api.revoke_key("k", "retired", approval_id="apr_1").json == {
        "reason": "retired", "approval_id": "apr_1"}
    assert api.schedule_deletion("k", 7, approval_id="apr_1").json == {
        "days": 7, "approval_id": "apr_1"}
    assert admin.create_token(["p"], approval_id="apr_1").json == {
        "policies": ["p"], "approval_id": "apr_1"}
    assert admin.put_policy("p", [{"keys": "**", "operations": ["read"]}],
                          approval_id="apr_1").json["approval_id"] == "apr_1"
    deletion = admin.delete_policy("p", approval_id="apr_1")
    assert deletion.params == (("approval_id", "apr_1"),) and deletion.json is None
    assert api.revoke_key("k", "retired").json == {"reason": "retired"}
    assert dual.set_dual_control(2, operations=["revoke"], ttl="1h").json == {
        "approvals": 2, "operations": ["revoke"], "ttl": "1h"}
    assert dual.decide("apr_1", "reject", "no").json == {"note": "no"}
    with pytest.raises(ValueError):
        dual.decide("apr_1", "maybe")
    with pytest.raises(ValueError):
        dual.list_approvals(state="bogus")


@pytest.fixture(scope="module")
def people(shared_inprocess: InProcessServer) -> Iterator[Cast]:
    made = cast(shared_inprocess, approvals=2)
    yield made
    made.close()


def test_the_whole_flow_through_the_client(people: Cast) -> None:
    name = unique("sdk/dc")
    with people.server.sdk(people.admin) as admin:
        admin.create_key(name, "aes-256-gcm")
        with pytest.raises(sdk.ApprovalRequiredError) as caught:
            admin.revoke_key(name, "compromised", note="stolen")
        approval_id = caught.value.approval_id
        assert approval_id and caught.value.details["approvals_required"] == 2
        settings = admin.dual_control()
        assert settings.enabled and settings.approvals == 2
        assert "revoke" in settings.operations

    for token in people.approvers[:2]:
        with people.server.sdk(token) as approver:
            page = approver.list_approvals()
            assert approval_id in {a.id for a in page.approvals}
            decided = approver.approve(approval_id, note="ok")
    assert decided.state == "approved" and decided.approvals == 2
    assert [d.decision for d in decided.decisions] == ["approve", "approve"]
    assert decided.summary == {"reason": "compromised", "note": "stolen"}
    assert decided.expires_at is not None and decided.requester

    with people.server.sdk(people.admin) as admin:
        key = admin.revoke_key(name, "compromised", note="stolen", approval_id=approval_id)
        assert key.versions[0].state == "compromised"
        with pytest.raises(sdk.ApprovalConsumedError):
            admin.revoke_key(name, "compromised", note="stolen", approval_id=approval_id)
        assert admin.get_approval(approval_id).state == "consumed"
        with pytest.raises(sdk.ApprovalRequiredError) as again:
            admin.delete_policy("dc-user")
        with people.server.sdk(people.approvers[0]) as approver:
            rejected = approver.reject(str(again.value.approval_id), note="still used")
        assert rejected.state == "rejected"
        with pytest.raises(sdk.ApprovalRejectedError):
            admin.delete_policy("dc-user", approval_id=again.value.approval_id)


def test_the_async_client_decides_too(people: Cast) -> None:
    name = unique("sdk/dca")

    async def flow() -> None:
        async with people.server.async_sdk(people.server.root_token) as admin:
            await admin.create_key(name, "aes-256-gcm")
            with pytest.raises(sdk.ApprovalRequiredError) as caught:
                await admin.schedule_deletion(name, 7)
            approval_id = str(caught.value.approval_id)
            with pytest.raises(sdk.SelfApprovalError):  # root holds approve, not for itself
                await admin.approve(approval_id)
            for token in people.approvers[:2]:
                async with people.server.async_sdk(token) as approver:
                    await approver.approve(approval_id)
            scheduled = await admin.schedule_deletion(name, 7, approval_id=approval_id)
            assert scheduled.destroy_at is not None

    asyncio.run(flow())
