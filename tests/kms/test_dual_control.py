"""Dual control over KMS: ScheduleKeyDeletion opens an approval request and answers
AccessDeniedException naming its id; the re-sent request carrying the approved id (the
X-Keyquorum-Approval-Id header, added by a boto3 event hook) goes through, once."""

from __future__ import annotations

import re
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.kms.live import LiveServer


def _with_approval(client: Any, approval_id: str) -> None:
    def add(request: Any, **_kwargs: Any) -> None:
        request.headers["X-Keyquorum-Approval-Id"] = approval_id

    client.meta.events.register("before-sign.kms.ScheduleKeyDeletion", add)


def test_schedule_key_deletion_waits_for_an_approval(live: LiveServer,
                                                     root_key: dict[str, Any]) -> None:
    kms = live.kms(root_key)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    with live.http() as http:
        approver = http.post("/v1/auth/tokens", json={"policies": ["approver"]}).json()["token"]
        turned = http.put("/v1/sys/dual-control", json={
            "approvals": 1, "operations": ["schedule-deletion"]})
        assert turned.status_code == 200, turned.text
    with pytest.raises(ClientError) as refused:
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    message = refused.value.response["Error"]["Message"]
    found = re.search(r"approval_id (\S+);", message)
    assert found, message
    approval_id = found.group(1)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    _with_approval(kms, approval_id)
    with pytest.raises(ClientError) as early:  # not approved yet
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert early.value.response["Error"]["Code"] in ("AccessDeniedException",
                                                       "KMSInvalidStateException")
    with live.http(approver) as http:
        decided = http.post(f"/v1/approvals/{approval_id}/approve", json={})
        assert decided.status_code == 200, decided.text
    done = kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert done["KeyState"] == "PendingDeletion"
    records = live.audit(operation="delete", key=f"kms/{key_id}")
    outcomes = {(r["outcome"], r["detail"].get("dual_control")) for r in records}
    assert ("ok", "approved") in outcomes and ("denied", "requested") in outcomes
    assert all(r["detail"]["api"] == "aws-kms" for r in records)
