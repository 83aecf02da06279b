"""Review F7: dual-control approvers see what they approve, whole.

The review's reproduction: a policy of 120 harmless ``read`` rules followed by
``{"keys": "**", "operations": ["*"]}`` was shown to approvers cut at 4096 characters,
so the root-equivalent rule was approved unseen; and a PKCS#11 seal was shown as type
and id only. Now the approver gets every rule and a diff against the stored policy, a
policy too long to show whole is refused under dual control, and a seal change shows
every public parameter. The real app, in process.
"""

from __future__ import annotations

from dual_control_support import cast, needs_approval
from http_helpers import assert_error, ok
from inprocess_server import InProcessServer

EVERYTHING = {"keys": "**", "operations": ["*"]}


def test_approver_sees_the_whole_policy_and_its_diff(inprocess_server: InProcessServer
                                                    ) -> None:
    people = cast(inprocess_server, approvals=2)
    try:
        admin = people.http(people.admin)
        harmless = [{"keys": f"team{n}/**", "operations": ["read"]} for n in range(120)]
        approval = needs_approval(admin.put("/v1/policies/reporting",
                                            json={"rules": [*harmless, EVERYTHING]}))
        shown = ok(people.http(people.approvers[0]).get(f"/v1/approvals/{approval}"))
        summary = shown["summary"]
        assert summary["change"] == "create" and summary["rules"].count("team") == 120
        assert '"keys":"**"' in summary["rules"] and '"operations":["*"]' in summary["rules"]
        assert '+{"effect":"allow","keys":"**","operations":["*"]}' in summary["diff"]
        people.approve(approval)
        ok(admin.put("/v1/policies/reporting", json={"rules": [*harmless, EVERYTHING],
                                                     "approval_id": approval}))

        # A change to the stored policy: the diff shows exactly the rule taken away.
        change = needs_approval(admin.put("/v1/policies/reporting",
                                          json={"rules": harmless}))
        diff = ok(people.http(people.approvers[1]).get(f"/v1/approvals/{change}")
                  )["summary"]["diff"]
        removed = [line for line in diff.splitlines() if line.startswith("-{")]
        assert removed == ['-{"effect":"allow","keys":"**","operations":["*"]}']
        assert not [line for line in diff.splitlines() if line.startswith("+{")]

        # Too long to show whole: refused, not shown in part.
        many = ["read", "list", "create", "update", "rotate", "disable", "enable",
                "encrypt", "decrypt", "sign", "verify", "mac"]
        huge = [{"keys": f"t{n}/" + "x" * 190 + "/**", "operations": many}
                for n in range(250)]  # ~85 KB of rules, within the rule limits
        refused = assert_error(admin.put("/v1/policies/huge", json={"rules": huge}), 400,
                               "invalid_request")
        assert "approvers can read all of it" in refused["message"]
    finally:
        people.close()


def test_approver_sees_every_public_parameter_of_a_seal_change(
        inprocess_server: InProcessServer) -> None:
    people = cast(inprocess_server, approvals=2)
    try:
        sealer = people.http()  # root: its guarded requests need approvals like anyone's
        body = {"type": "awskms", "id": "kms", "key_id": "arn:aws:kms:eu-west-1:1:key/k",
                "region": "eu-west-1"}
        approval = needs_approval(sealer.post("/v1/sys/seals", json=body))
        summary = ok(people.http(people.approvers[0]).get(f"/v1/approvals/{approval}")
                     )["summary"]
        assert summary["key_id"] == body["key_id"] and summary["region"] == "eu-west-1"
        assert summary["type"] == "awskms" and summary["id"] == "kms"
    finally:
        people.close()
