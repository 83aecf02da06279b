"""A database writer edits a ceremony's stored row between two submissions.

Rekey, seal-add and break glass keep their public facts in the clear in one stored
entry (``ceremony/...``) and the shares collected so far under the barrier. The
writer has no barrier key, but can rewrite everything in the clear: the keys a
rekey seals the new shares to, the seal a seal-add will add, the public key a
break-glass token is sealed to. Each test lets custodians submit all shares but
the last, edits the row as such a writer would (through the store, with no key),
and checks that the last share is refused and nothing is changed: the collected
shares are bound to the ceremony's public facts, so they count only for the
ceremony the custodians were shown.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from custodian_keys_support import Custodians
from http_helpers import assert_error, ok
from inprocess_server import InProcessServer
from keyquorum.crypto import kem_box
from keyquorum.service.generate_root import GENERATE_ROOT_ENTRY
from keyquorum.service.rekey import REKEY_ENTRY
from keyquorum.service.seal_change import SEAL_ADD_ENTRY
from keyquorum.storage.system_repo import get_entry, put_entry


def rewrite(server: InProcessServer, name: str,
            edit: Callable[[dict[str, Any]], None]) -> None:
    """What a database writer can do: change the row's JSON, with no key at all."""
    assert server.core is not None
    with server.core.engine.begin() as conn:
        raw = get_entry(conn, name)
        assert raw is not None
        data = json.loads(raw)
        edit(data)
        put_entry(conn, name, json.dumps(data).encode(), 0.0)


def generation(server: InProcessServer) -> int:
    with server.client() as http:
        return int(ok(http.get("/v1/sys/rekey"))["generation"])


def _rekey_update(server: InProcessServer, nonce: str, share: str) -> httpx.Response:
    with server.anonymous() as http:
        return http.post("/v1/sys/rekey/update", json={"nonce": nonce, "share": share})


def test_rekey_keys_swapped_after_a_share_was_submitted_get_no_new_share(
        inprocess_server: InProcessServer) -> None:
    """The writer pins their own key for every custodian: at the quorum each new share
    would be sealed to them, a whole new quorum, so the root key."""
    server = inprocess_server
    people, theirs = Custodians(["share-1", "share-2", "share-3"]), Custodians(
        ["share-1", "share-2", "share-3"])
    with server.client() as http:
        nonce = ok(http.post("/v1/sys/rekey/init", json={
            "reissue": True, "custodian_keys": people.keys_body()}))["nonce"]
    before = generation(server)
    ok(_rekey_update(server, nonce, server.shares[0]))

    def swap(data: dict[str, Any]) -> None:
        plan = data["plan"]
        plan["recipients"] = [[n, theirs.fingerprint(n), "given"] for n in theirs.pairs]
        plan["given_keys"] = [[n, pem] for n, pem in theirs.keys_body().items()]
    rewrite(server, REKEY_ENTRY, swap)

    assert_error(_rekey_update(server, nonce, server.shares[1]), 409, "conflict")
    assert generation(server) == before


def test_a_rekey_plan_rewritten_before_any_share_is_refused(
        inprocess_server: InProcessServer) -> None:
    server = inprocess_server
    people = Custodians(["share-1", "share-2", "share-3"])
    with server.client() as http:
        nonce = ok(http.post("/v1/sys/rekey/init", json={
            "reissue": True, "custodian_keys": people.keys_body()}))["nonce"]

    def lower(data: dict[str, Any]) -> None:
        data["plan"]["threshold"] = 1
    rewrite(server, REKEY_ENTRY, lower)

    assert_error(_rekey_update(server, nonce, server.shares[0]), 409, "conflict")


def test_a_seal_add_whose_wrapped_entry_was_swapped_adds_nothing(
        inprocess_server: InProcessServer) -> None:
    """The writer moves the wrapped entry of an earlier proposal (say, a passphrase seal
    someone proposed and then cancelled) under today's ceremony, whose description the
    custodians approve."""
    server = inprocess_server
    with server.client() as http:
        cancelled = ok(http.post("/v1/sys/seals", json={
            "type": "passphrase", "id": "theirs", "passphrase": "known to the writer 123"}))
        assert server.core is not None
        with server.core.engine.connect() as conn:
            raw = get_entry(conn, SEAL_ADD_ENTRY)
        assert raw is not None and cancelled["nonce"]
        old_entry = json.loads(raw)["sealed_entry"]
        ok(http.delete("/v1/sys/seal-add"))
        nonce = ok(http.post("/v1/sys/seals", json={
            "type": "passphrase", "id": "ours", "passphrase": "only the custodians 456"}))[
                "nonce"]

    def splice(data: dict[str, Any]) -> None:
        data["sealed_entry"] = old_entry
    rewrite(server, SEAL_ADD_ENTRY, splice)

    with server.anonymous() as http:
        for share in server.shares[:2]:  # refused from the first: the proposal is bound
            assert_error(http.post("/v1/sys/seal-add/update",
                                   json={"nonce": nonce, "share": share}), 409, "conflict")
    with server.client() as http:
        ids = [s["id"] for s in ok(http.get("/v1/sys/seals"))["seals"]]
    assert "theirs" not in ids and "ours" not in ids


def test_break_glass_with_the_requesters_key_swapped_mints_no_token(
        inprocess_server: InProcessServer) -> None:
    server = inprocess_server
    _, requester = kem_box.generate()
    _, writer = kem_box.generate()
    with server.anonymous() as http:
        opened = ok(http.post("/v1/sys/generate-root/init",
                              json={"public_key": requester, "share": server.shares[0]}))

    def swap(data: dict[str, Any]) -> None:
        data["public_key"] = writer.strip() + "\n"
        data["fingerprint"] = kem_box.public_fingerprint(writer)
    rewrite(server, GENERATE_ROOT_ENTRY, swap)

    with server.anonymous() as http:
        last = http.post("/v1/sys/generate-root/update",
                         json={"nonce": opened["nonce"], "share": server.shares[1]})
    assert_error(last, 409, "conflict")
    assert server.core is not None
    with server.core.engine.connect() as conn:
        assert get_entry(conn, GENERATE_ROOT_ENTRY) is not None  # nothing was minted


def test_break_glass_whose_collected_shares_were_dropped_is_refused(
        inprocess_server: InProcessServer) -> None:
    """Dropping the shares blob (and the opener's share with it) with the writer's key
    put in: the remaining custodians would mint a token for the writer."""
    server = inprocess_server
    _, requester = kem_box.generate()
    _, writer = kem_box.generate()
    with server.anonymous() as http:
        opened = ok(http.post("/v1/sys/generate-root/init",
                              json={"public_key": requester, "share": server.shares[0]}))

    def reset(data: dict[str, Any]) -> None:
        data.update(public_key=writer.strip() + "\n",
                    fingerprint=kem_box.public_fingerprint(writer), indexes=[],
                    sealed_shares=None)
    rewrite(server, GENERATE_ROOT_ENTRY, reset)

    with server.anonymous() as http:
        step = http.post("/v1/sys/generate-root/update",
                         json={"nonce": opened["nonce"], "share": server.shares[1]})
    assert_error(step, 409, "conflict")
