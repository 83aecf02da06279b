"""Rekey over HTTP: shares verified one by one, a wrong one refused alone, dual control,
cancel, and every step in the audit log (never a share).

(The CLI's rekey against a server process: tests/e2e/test_custodian_rekey.py.)"""

from __future__ import annotations

import httpx

from custodian_keys_support import Custodians
from dual_control_support import cast, needs_approval
from http_helpers import assert_error, ok
from inprocess_server import InProcessServer
from keyquorum.seal.shamir import create_shamir_seal


def _update(server: InProcessServer, nonce: str, share: str) -> httpx.Response:
    with server.anonymous() as http:
        return http.post("/v1/sys/rekey/update", json={"nonce": nonce, "share": share})


def test_a_wrong_share_is_refused_alone_and_n_k_change(inprocess_server: InProcessServer) -> None:
    server = inprocess_server
    people = Custodians(["ann", "ben", "cat", "dov"])
    with server.client() as http:
        assert_error(http.post("/v1/sys/rekey/init", json={"shares": 4, "threshold": 4}),
                     400, "invalid_request")  # k = n needs force here too
        started = ok(http.post("/v1/sys/rekey/init", json={
            "shares": 4, "threshold": 3, "custodians": ["ann", "ben", "cat", "dov"],
            "custodian_keys": people.keys_body()}))
        assert_error(http.post("/v1/sys/rekey/init", json={
            "reissue": True, "custodian_keys": Custodians(
                ["share-1", "share-2", "share-3"]).keys_body()}), 409, "conflict")
    nonce = started["nonce"]
    assert (started["progress"], started["required"], started["new_threshold"]) == (0, 2, 3)
    _, foreign = create_shamir_seal(bytes(32), 3, 2)
    assert_error(_update(server, nonce, foreign[0]), 400, "invalid_request")
    assert_error(_update(server, "not-the-nonce", server.shares[0]), 400, "invalid_request")
    status = server.anonymous().get("/v1/sys/rekey").json()  # no token needed
    assert (status["started"], status["progress"]) == (True, 0)
    assert ok(_update(server, nonce, server.shares[0]))["progress"] == 1
    assert_error(_update(server, nonce, server.shares[0]), 400, "invalid_request")
    assert server.anonymous().get("/v1/sys/rekey").json()["submitted"] == [1]
    done = ok(_update(server, nonce, server.shares[2]))
    assert done["complete"] and "shares" not in done and done["threshold"] == 3
    new_shares = people.open_all(done)
    assert len(new_shares) == 4
    seal = server.anonymous().get("/v1/sys/seal-status").json()
    assert (seal["shares"], seal["threshold"]) == (4, 3)
    assert_error(_update(server, nonce, server.shares[1]), 404, "not_found")  # it is over

    with server.client() as http:
        records = ok(http.get("/v1/audit", params={"limit": 1000}))["records"]
    steps = [(r["operation"], r["outcome"]) for r in records
             if r["operation"].startswith("sys:rekey")]
    assert ("sys:rekey-init", "ok") in steps and ("sys:rekey-update", "error") in steps
    assert steps.count(("sys:rekey-update", "ok")) == 2
    text = str(records)
    for share in (*server.shares, *new_shares):
        assert share not in text and share.split("-")[2] not in text

    with server.client() as http:
        ok(http.post("/v1/sys/seal"))
    assert server.unseal(new_shares[1:])["sealed"] is False


def _reissue(people: Custodians | None = None) -> dict[str, object]:
    people = people or Custodians(["share-1", "share-2", "share-3"])
    return {"reissue": True, "custodian_keys": people.keys_body()}


def test_cancel_needs_a_token_and_drops_the_ceremony(inprocess_server: InProcessServer) -> None:
    server = inprocess_server
    with server.client() as http:
        nonce = ok(http.post("/v1/sys/rekey/init", json=_reissue()))["nonce"]
    ok(_update(server, nonce, server.shares[0]))
    assert_error(server.anonymous().delete("/v1/sys/rekey"), 401, "unauthenticated")
    with server.client() as http:
        assert ok(http.delete("/v1/sys/rekey"))["cancelled"] is True
        assert_error(http.delete("/v1/sys/rekey"), 404, "not_found")
    assert server.anonymous().get("/v1/sys/rekey").json()["started"] is False
    assert_error(_update(server, nonce, server.shares[1]), 404, "not_found")
    with server.client() as http:  # the old shares still rule: nothing changed
        ok(http.post("/v1/sys/seal"))
    assert server.unseal(server.shares[1:])["sealed"] is False


def test_an_expired_ceremony_is_gone(inprocess_server: InProcessServer) -> None:
    server = inprocess_server
    with server.client() as http:
        nonce = ok(http.post("/v1/sys/rekey/init", json=_reissue()))["nonce"]
    server.advance_clock(3601)
    assert server.anonymous().get("/v1/sys/rekey").json()["started"] is False
    assert_error(_update(server, nonce, server.shares[0]), 404, "not_found")


def test_rekey_under_dual_control_needs_approval(inprocess_server: InProcessServer) -> None:
    people = cast(inprocess_server)
    try:
        root = people.http()
        keys = Custodians(["share-1", "share-2", "erin"])
        body = {"replace": {"custodian": "share-3", "with": "erin"},
                "custodian_keys": keys.keys_body()}
        approval_id = needs_approval(root.post("/v1/sys/rekey/init", json=body))
        assert_error(root.post("/v1/sys/rekey/init", json={**body, "approval_id": approval_id}),
                     403, "approval_required")
        people.approve(approval_id)
        started = ok(root.post("/v1/sys/rekey/init", json={**body, "approval_id": approval_id}))
        assert started["new_custodians"] == ["share-1", "share-2", "erin"]
        ok(_update(inprocess_server, started["nonce"], inprocess_server.shares[0]))
        done = ok(_update(inprocess_server, started["nonce"], inprocess_server.shares[1]))
        assert done["custodians"] == ["share-1", "share-2", "erin"]
        assert len(keys.open_all(done)) == 3
    finally:
        people.close()
