"""Review F8: one ``sys:dual-control`` holder cannot lock every guarded action for good.

The review's reproduction: an operator sets ``approvals`` to 16 with no approval, and
revoking a compromised key then waits for approvals nobody can give. Now the number can
never exceed the identities able to approve, raising it (or shortening the TTL) needs
the approvals in force, and the config file's ``max_approvals`` lowers what is in force
without anyone's approval. The real app and store, in process.
"""

from __future__ import annotations

from conftest import MakeInProcess
from dual_control_support import cast, needs_approval
from http_helpers import assert_error, create_key, ok, unique
from inprocess_server import InProcessServer


def _revoke(http: object, name: str, approval_id: str | None = None) -> object:
    body = {"reason": "compromised", **({"approval_id": approval_id} if approval_id else {})}
    return http.post(f"/v1/keys/{name}/revoke", json=body)  # type: ignore[attr-defined]


def test_approvals_can_never_exceed_the_identities_that_can_approve(
        inprocess_server: InProcessServer) -> None:
    server = inprocess_server
    with server.client() as root:
        operator = str(ok(root.post("/v1/auth/tokens", json={"policies": ["operator"]}))
                       ["token"])
    with server.client(operator) as http:
        # Only root can approve yet: 16, or even 2, would lock every guarded action.
        for approvals in (16, 2):
            refused = assert_error(http.put("/v1/sys/dual-control",
                                            json={"approvals": approvals}),
                                   400, "invalid_request")
            assert "more than the 1 identities that can approve" in refused["message"]
        assert ok(http.get("/v1/sys/dual-control"))["enabled"] is False
        on = ok(http.put("/v1/sys/dual-control", json={"approvals": 1}))
    assert on["approvals"] == 1 and on["approvers"] == 1


def test_raising_approvals_or_shortening_the_ttl_needs_the_approvals_in_force(
        inprocess_server: InProcessServer) -> None:
    people = cast(inprocess_server, approvals=2)  # three approvers, plus root
    try:
        admin = people.http(people.admin)
        assert_error(admin.put("/v1/sys/dual-control", json={"approvals": 16}), 400,
                     "invalid_request")
        raise_id = needs_approval(admin.put("/v1/sys/dual-control", json={"approvals": 4}))
        shorter_id = needs_approval(admin.put("/v1/sys/dual-control",
                                              json={"approvals": 2, "ttl": "1m"}))
        in_force = ok(admin.get("/v1/sys/dual-control"))
        assert (in_force["approvals"], in_force["ttl"]) == (2, 24 * 3600.0)
        # Once approved by others, it applies: the rule guards, it does not forbid.
        people.approve(shorter_id)
        assert ok(admin.put("/v1/sys/dual-control", json={
            "approvals": 2, "ttl": "1m", "approval_id": shorter_id}))["ttl"] == 60.0
        people.approve(raise_id)  # approved within its own (24 h) life
        assert ok(admin.put("/v1/sys/dual-control", json={
            "approvals": 4, "approval_id": raise_id}))["approvals"] == 4
    finally:
        people.close()


def test_the_config_file_lowers_a_locked_dual_control_so_a_compromised_key_can_be_revoked(
        make_inprocess: MakeInProcess) -> None:
    server = make_inprocess()
    server.init()
    server.unseal()
    people = cast(server, approvals=None)
    admin = people.http(people.admin)
    ok(admin.put("/v1/sys/dual-control", json={"approvals": 3}))  # off -> on: at once
    name = unique("lock/key")
    create_key(admin, name, "aes-256-gcm")
    # Two of the three approvers leave (their tokens are revoked): 3 approvals can no longer
    # be gathered, and revoking a compromised key waits for ever.
    with server.client() as root:
        for token in people.approvers[1:]:
            accessor = ok(people.http(token).get("/v1/auth/tokens/self"))["accessor"]
            ok(root.delete(f"/v1/auth/tokens/{accessor}"))
    stuck = needs_approval(_revoke(admin, name), required=3)
    people.approve(stuck, count=1)
    assert_error(_revoke(admin, name, stuck), 403, "approval_required")
    people.close()

    # The operator edits the config file (its trust root) and restarts: no approval needed.
    server.stop()
    again = InProcessServer(server.data_dir, config={"dual_control": {
        "approvals": 0, "max_approvals": 1}})
    again.root_token, again.shares = server.root_token, server.shares
    again.start()
    try:
        again.unseal()
        people.server = again  # the same tokens, in the same store
        admin = people.http(people.admin)
        described = ok(admin.get("/v1/sys/dual-control"))
        assert (described["approvals"], described["max_approvals"]) == (1, 1)
        assert described["stored"]["approvals"] == 3
        approval = needs_approval(_revoke(admin, name), required=1)
        people.approve(approval, count=1)
        assert ok(_revoke(admin, name, approval))["versions"][0]["state"] == "compromised"
        assert_error(admin.put("/v1/sys/dual-control", json={"approvals": 2}), 400,
                     "invalid_request")
        people.close()
    finally:
        again.stop()
