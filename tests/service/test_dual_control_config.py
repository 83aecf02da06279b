"""Dual control from the config file: a floor the API cannot go below (the real app, in process).

(A bad config stopping the server at start, and dual control across ``--workers``:
tests/e2e/test_dual_control_config.py.)"""

from __future__ import annotations

from conftest import MakeInProcess
from dual_control_support import cast, needs_approval
from http_helpers import assert_error, create_key, ok, unique


def test_the_config_file_turns_it_on_and_is_a_floor(make_inprocess: MakeInProcess) -> None:
    server = make_inprocess(config={"dual_control": {
        "approvals": 1, "operations": ["revoke"], "ttl": "1h"}})
    server.init()
    server.unseal()
    people = cast(server, approvals=None)
    admin = people.http(people.admin)
    described = ok(admin.get("/v1/sys/dual-control"))
    assert described["config_file"] == {"approvals": 1, "operations": ["revoke"],
                                        "ttl": 3600.0}
    assert (described["approvals"], described["operations"], described["stored"]) == (
        1, ["revoke"], None)

    name = unique("dcc/key")
    create_key(admin, name, "aes-256-gcm")
    ok(admin.post(f"/v1/keys/{name}/schedule-deletion", json={}))  # not in the set
    other = unique("dcc/key")
    create_key(admin, other, "aes-256-gcm")
    approval_id = needs_approval(admin.post(f"/v1/keys/{other}/revoke",
                                            json={"reason": "retired"}), required=1)
    people.approve(approval_id, count=1)
    ok(admin.post(f"/v1/keys/{other}/revoke",
                  json={"reason": "retired", "approval_id": approval_id}))

    # The API may not ask for fewer approvals than the file, even with approvals.
    error = assert_error(admin.put("/v1/sys/dual-control", json={"approvals": 0}), 400,
                         "invalid_request")
    assert "config file requires at least 1" in error["message"]
    # Settings and file combine: the union of actions, the shorter ttl.
    combined = ok(admin.put("/v1/sys/dual-control",
                            json={"approvals": 1, "operations": ["policy-put"],
                                  "ttl": "2h"}))
    assert (combined["approvals"], combined["operations"], combined["ttl"]) == (
        1, ["policy-put", "revoke"], 3600.0)
    assert combined["stored"]["operations"] == ["policy-put"]
    # Stricter could lock guarded actions: it needs the approvals in force (review F8).
    up_id = needs_approval(admin.put("/v1/sys/dual-control", json={"approvals": 2}),
                           required=1)
    people.approve(up_id, count=1)
    stricter = ok(admin.put("/v1/sys/dual-control", json={"approvals": 2,
                                                          "approval_id": up_id}))
    assert stricter["approvals"] == 2 and stricter["ttl"] == 3600.0
    assert "token-create-privileged" in stricter["operations"]
    # Back down to the file's floor is weakening: it needs the approvals now in force.
    back = {"approvals": 1, "operations": ["revoke"], "ttl": "1h"}
    back_id = needs_approval(admin.put("/v1/sys/dual-control", json=back), required=2)
    people.approve(back_id, count=2)
    assert ok(admin.put("/v1/sys/dual-control",
                        json={**back, "approval_id": back_id}))["approvals"] == 1

    # The file's one-hour ttl applies.
    late = unique("dcc/late")
    create_key(admin, late, "aes-256-gcm")
    late_id = needs_approval(admin.post(f"/v1/keys/{late}/revoke",
                                        json={"reason": "retired"}), required=1)
    people.approve(late_id, count=1)
    server.advance_clock(3601)
    assert_error(admin.post(f"/v1/keys/{late}/revoke",
                            json={"reason": "retired", "approval_id": late_id}),
                 409, "approval_expired")
    people.close()
