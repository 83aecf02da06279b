"""Shares reach only their custodian (review F11): init and rekey seal each share to its
custodian's registered key, rekey never answers a share in the clear (nor to the one
who completes it), and only the holder of a custodian's current share registers a key
in their name.

(The key pair and envelope formats: tests/seal/test_custodian_keys.py. The CLI:
tests/cli/test_custodian_key_cli.py. Root key rotation: test_root_rotation.py.)
"""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import httpx
import pytest

from custodian_keys_support import Custodians
from http_helpers import assert_error, ok
from inprocess_server import InProcessServer
from keyquorum.client._custodians import CustodianChallenge, make_proof
from keyquorum.crypto import vss
from keyquorum.seal.custodian_key import CustodianKeyError
from keyquorum.seal.custodian_proof import key_registration_context
from keyquorum.seal.share_envelope import ShareEnvelope, open_share
from keyquorum.seal.shares import decode_share

NAMES = ["ann", "ben", "cy"]


def _key_proof(challenge: dict[str, Any], share: str, fingerprint: str) -> str:
    parsed = decode_share(share)
    commitments = [bytes.fromhex(c) for c in challenge["commitments"]]
    context = key_registration_context(base64.b64decode(challenge["challenge"]),
                                       challenge["custodian"], challenge["index"],
                                       challenge["generation"], fingerprint)
    return base64.b64encode(vss.prove_possession(parsed, commitments, context)).decode()


def _register(anyone: httpx.Client, name: str, share: str, public_pem: str,
              fingerprint: str | None = None) -> httpx.Response:
    """Register ``public_pem`` for ``name`` with a proof bound to ``fingerprint``
    (default: the key's own) made with ``share``."""
    from keyquorum.seal.custodian_key import fingerprint as print_of

    challenge = ok(anyone.post(f"/v1/sys/custodians/{name}/challenge"))
    proof = _key_proof(challenge, share, fingerprint or print_of(public_pem))
    return anyone.post(f"/v1/sys/custodians/{name}/key", json={
        "challenge_id": challenge["challenge_id"], "proof": proof, "public_key": public_pem})


def _no_share_in(text: str) -> None:
    assert "kqs1-" not in text


@pytest.fixture
def server(fresh_inprocess: InProcessServer) -> InProcessServer:
    return fresh_inprocess


def test_init_with_custodian_keys_answers_only_envelopes_each_for_its_custodian(
        server: InProcessServer) -> None:
    people = Custodians(NAMES)
    with server.anonymous() as anyone:
        made = ok(anyone.post("/v1/sys/init", json={
            "shares": 3, "threshold": 2, "custodians": NAMES,
            "custodian_keys": people.keys_body()}))
    assert made["delivery"] == "encrypted" and "shares" not in made
    _no_share_in(json.dumps(made))
    assert [(e["custodian"], e["index"], e["recipient"]) for e in made["encrypted_shares"]] \
        == [(name, i, people.fingerprint(name)) for i, name in enumerate(NAMES, start=1)]
    shares = people.open_all(made)
    # Each envelope opens only with its own custodian's key.
    ann_envelope = ShareEnvelope.from_text(made["encrypted_shares"][0]["envelope"])
    with pytest.raises(CustodianKeyError) as wrong:
        open_share(ann_envelope, people.private("ben"))
    assert wrong.value.code == "wrong_custodian_key"
    # Relabelled for another custodian, it does not authenticate.
    moved = dataclasses.replace(ann_envelope, custodian="ben")
    with pytest.raises(CustodianKeyError) as tampered:
        open_share(moved, people.private("ann"))
    assert tampered.value.code == "invalid_share_envelope"
    server.root_token = made["root_token"]
    assert server.unseal(shares[1:])["sealed"] is False
    with server.client() as http:
        status = ok(http.get("/v1/sys/custodians"))
        records = ok(http.get("/v1/audit", params={"operation": "sys:init"}))["records"]
    assert [c["key_fingerprint"] for c in status["custodians"]] == [
        people.fingerprint(name) for name in NAMES]
    assert [c["delivery"] for c in status["custodians"]] == ["encrypted"] * 3
    assert records[0]["detail"]["delivery"] == "encrypted"
    _no_share_in(json.dumps(records))


def test_a_custodian_fetches_only_a_ciphertext_of_their_own_share(
        server: InProcessServer) -> None:
    people = Custodians(NAMES)
    with server.anonymous() as anyone:
        made = ok(anyone.post("/v1/sys/init", json={
            "shares": 3, "threshold": 2, "custodians": NAMES,
            "custodian_keys": people.keys_body()}))
        picked = ok(anyone.get("/v1/sys/custodians/ben/share"))  # no token
        assert_error(anyone.get("/v1/sys/custodians/nobody/share"), 404, "not_found")
    assert picked["envelope"] == made["encrypted_shares"][1]["envelope"]
    assert picked["recipient"] == picked["key_fingerprint"] == people.fingerprint("ben")
    assert picked["commitments"] == made["commitments"] and picked["acknowledged_at"] is None
    assert people.open({"custodian": "ben", "envelope": picked["envelope"]}).startswith(
        "kqs1-02-")


def test_init_refuses_keys_for_some_custodians_only_or_a_bad_key(
        server: InProcessServer) -> None:
    people = Custodians(NAMES)
    with server.anonymous() as anyone:
        assert_error(anyone.post("/v1/sys/init", json={
            "shares": 3, "threshold": 2, "custodians": NAMES,
            "custodian_keys": people.keys_body(["ann", "ben"])}), 400, "invalid_request")
        refused = anyone.post("/v1/sys/init", json={
            "shares": 3, "threshold": 2, "custodians": NAMES,
            "custodian_keys": {**people.keys_body(), "cy": "-----BEGIN NOT A KEY-----"}})
        assert_error(refused, 400, "invalid_request")
        assert "the key of cy" in refused.json()["error"]["message"]
        assert ok(anyone.get("/v1/sys/seal-status"))["initialized"] is False


def test_rekey_without_custodian_keys_is_refused_and_starts_nothing(
        inprocess_server: InProcessServer) -> None:
    server = inprocess_server
    with server.client() as http:
        refused = http.post("/v1/sys/rekey/init", json={"reissue": True})
        assert_error(refused, 409, "custodian_key_required")
        assert "share-1, share-2, share-3" in refused.json()["error"]["message"]
        # One key short is refused too, naming only the one without.
        some = Custodians(["share-1", "share-2"]).keys_body()
        refused = http.post("/v1/sys/rekey/init", json={"reissue": True,
                                                        "custodian_keys": some})
        assert_error(refused, 409, "custodian_key_required")
        assert "for: share-3." in refused.json()["error"]["message"]
        assert ok(http.get("/v1/sys/rekey"))["started"] is False


def test_rekey_never_returns_every_new_share_to_its_last_submitter(
        inprocess_server: InProcessServer) -> None:
    """F11's first half: the completing submitter got all n new shares in the clear."""
    server = inprocess_server
    people = Custodians(["share-1", "share-2", "share-3"])
    with server.client() as http:
        started = ok(http.post("/v1/sys/rekey/init", json={
            "reissue": True, "custodian_keys": people.keys_body()}))
    assert [r["fingerprint"] for r in started["recipients"]] == [
        people.fingerprint(n) for n in ("share-1", "share-2", "share-3")]
    with server.anonymous() as anyone:
        ok(anyone.post("/v1/sys/rekey/update", json={"nonce": started["nonce"],
                                                     "share": server.shares[0]}))
        last = anyone.post("/v1/sys/rekey/update", json={"nonce": started["nonce"],
                                                         "share": server.shares[1]})
    done = ok(last)
    assert done["complete"] and done["delivery"] == "encrypted" and "shares" not in done
    _no_share_in(last.text)
    # The last submitter (share-2) can open its own envelope and nobody else's.
    envelopes = {e["custodian"]: ShareEnvelope.from_text(e["envelope"])
                 for e in done["encrypted_shares"]}
    for other in ("share-1", "share-3"):
        with pytest.raises(CustodianKeyError):
            open_share(envelopes[other], people.private("share-2"))
    new_shares = people.open_all(done)
    assert [decode_share(s).index for s in new_shares] == [1, 2, 3]
    with server.client() as http:
        records = ok(http.get("/v1/audit", params={"limit": 500}))["records"]
    _no_share_in(json.dumps(records))


def test_a_custodian_registers_a_key_only_with_their_current_share(
        inprocess_server: InProcessServer) -> None:
    server = inprocess_server
    people = Custodians(["share-1", "share-2", "operator"])
    mine = people.pairs["share-1"].public_pem
    theirs = people.pairs["operator"].public_pem
    with server.anonymous() as anyone:
        # Another custodian's share does not register a key in share-1's name.
        assert_error(_register(anyone, "share-1", server.shares[1], theirs), 400,
                     "invalid_proof")
        # A proof made for one key does not register another (a relaying operator
        # cannot swap in their own).
        assert_error(_register(anyone, "share-1", server.shares[0], theirs,
                               fingerprint=people.fingerprint("share-1")), 400,
                     "invalid_proof")
        # A drill proof is not a registration (another domain).
        challenge = ok(anyone.post("/v1/sys/custodians/share-1/challenge"))
        drill = make_proof(CustodianChallenge.from_json(challenge), server.shares[0])
        assert_error(anyone.post("/v1/sys/custodians/share-1/key", json={
            **drill, "public_key": mine}), 400, "invalid_proof")
        assert_error(anyone.post("/v1/sys/custodians/nobody/key", json={
            "challenge_id": challenge["challenge_id"], "proof": drill["proof"],
            "public_key": mine}), 404, "not_found")
        registered = ok(_register(anyone, "share-1", server.shares[0], mine))
    assert registered["fingerprint"] == people.fingerprint("share-1")
    assert registered["replaced"] is None
    # A token (even root) has no route to put a key in a custodian's name: the only
    # route is the proof above, and it needs no token because the share is the credential.
    with server.client() as http:
        status = ok(http.get("/v1/sys/custodians"))
        records = ok(http.get("/v1/audit", params={"operation": "sys:custodian-key"}))
    row = status["custodians"][0]
    assert row["key_fingerprint"] == people.fingerprint("share-1")
    assert row["acknowledged"] is True  # a registration proves possession too
    outcomes = sorted(r["outcome"] for r in records["records"])
    assert outcomes == ["error", "error", "error", "error", "ok"]
    ok_record = next(r for r in records["records"] if r["outcome"] == "ok")
    assert ok_record["detail"]["fingerprint"] == people.fingerprint("share-1")
    assert ok_record["detail"]["previous"] == "none"
    assert {r["detail"]["custodian"] for r in records["records"]} == {"share-1", "nobody"}


def test_a_rekey_seals_to_registered_keys_and_pins_them_for_its_submitters(
        inprocess_server: InProcessServer) -> None:
    server = inprocess_server
    people = Custodians(["share-1", "share-2", "share-3"])
    with server.anonymous() as anyone:
        for i, name in enumerate(("share-1", "share-2", "share-3")):
            ok(_register(anyone, name, server.shares[i], people.pairs[name].public_pem))
    with server.client() as http:
        started = ok(http.post("/v1/sys/rekey/init", json={"reissue": True}))
    assert {r["source"] for r in started["recipients"]} == {"registered"}
    # share-3 registers another key while the ceremony runs: what the submitters were
    # shown is no longer what would be used, so the quorum is refused and nothing changes.
    people.add("share-3b")
    with server.anonymous() as anyone:
        ok(_register(anyone, "share-3", server.shares[2], people.pairs["share-3b"].public_pem))
        ok(anyone.post("/v1/sys/rekey/update", json={"nonce": started["nonce"],
                                                     "share": server.shares[0]}))
        refused = anyone.post("/v1/sys/rekey/update", json={"nonce": started["nonce"],
                                                            "share": server.shares[1]})
    assert_error(refused, 409, "conflict")
    assert "key registered for share-3 changed" in refused.json()["error"]["message"]
    with server.client() as http:
        ok(http.delete("/v1/sys/rekey"))
        restarted = ok(http.post("/v1/sys/rekey/init", json={"reissue": True}))
    with server.anonymous() as anyone:
        for share in server.shares[:2]:
            done = ok(anyone.post("/v1/sys/rekey/update", json={
                "nonce": restarted["nonce"], "share": share}))
    third = next(e for e in done["encrypted_shares"] if e["custodian"] == "share-3")
    assert third["recipient"] == people.fingerprint("share-3b")
    assert people.open({"custodian": "share-3b", "envelope": third["envelope"]})


def test_a_given_key_over_a_registered_one_is_shown_to_approvers_and_submitters(
        inprocess_server: InProcessServer) -> None:
    server = inprocess_server
    people = Custodians(["share-1", "share-2", "share-3", "mallory"])
    with server.anonymous() as anyone:
        for i, name in enumerate(("share-1", "share-2", "share-3")):
            ok(_register(anyone, name, server.shares[i], people.pairs[name].public_pem))
    given = {"share-2": people.pairs["mallory"].public_pem}
    with server.client() as http:
        started = ok(http.post("/v1/sys/rekey/init", json={"reissue": True,
                                                           "custodian_keys": given}))
        records = ok(http.get("/v1/audit", params={"operation": "sys:rekey-init"}))
    expected = (f"share-2: {people.fingerprint('share-2')} -> "
                f"{people.fingerprint('mallory')}")
    assert started["keys_replaced"] == [expected]
    with server.anonymous() as anyone:  # what custodians see before they submit a share
        assert ok(anyone.get("/v1/sys/rekey"))["keys_replaced"] == [expected]
    assert records["records"][0]["detail"]["keys_replaced"] == expected
