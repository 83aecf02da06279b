"""Custodian drills over HTTP: one-use challenges, proofs bound to challenge, name, index
and generation; every refusal has a stable code and is audited. Init refuses k = n.

(The CLI's prove and status against a server process: tests/e2e/test_custodian_drills.py.)"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from http_helpers import assert_error, ok
from inprocess_server import InProcessServer
from keyquorum.crypto import vss
from keyquorum.seal.custodian_proof import proof_context
from keyquorum.seal.shamir import create_shamir_seal
from keyquorum.seal.shares import decode_share

NAMES = ["alice", "bob", "carol", "dan"]


@pytest.fixture(scope="module")
def drill_server(tmp_path_factory: pytest.TempPathFactory,
                 migrated_store: Path) -> Iterator[InProcessServer]:
    server = InProcessServer(tmp_path_factory.mktemp("drills") / "data", migrated=migrated_store)
    try:
        server.start()
        server.init(4, 2, custodians=NAMES)
        server.unseal()
        yield server
    finally:
        server.stop()


def _challenge(server: InProcessServer, name: str) -> dict:
    # No token: a custodian may hold nothing but a share.
    with server.anonymous() as http:
        return ok(http.post(f"/v1/sys/custodians/{name}/challenge"))  # type: ignore[no-any-return]


def _proof(challenge: dict, share_text: str, name: str | None = None,
           index: int | None = None) -> str:
    share = decode_share(share_text)
    context = proof_context(base64.b64decode(challenge["challenge"]),
                            name or challenge["custodian"], index or challenge["index"],
                            challenge["generation"])
    commitments = [bytes.fromhex(c) for c in challenge["commitments"]]
    return base64.b64encode(vss.prove_possession(share, commitments, context)).decode()


def _send(server: InProcessServer, name: str, challenge_id: str, proof: str) -> httpx.Response:
    with server.anonymous() as http:
        return http.post(f"/v1/sys/custodians/{name}/proof",
                         json={"challenge_id": challenge_id, "proof": proof})


def _refusals(server: InProcessServer, code: str) -> list[dict]:
    with server.client() as http:
        records = ok(http.get("/v1/audit", params={"operation": "sys:custodian-proof",
                                                   "limit": 1000}))["records"]
    return [r for r in records if r["error_code"] == code]


def test_a_proof_counts_once_and_its_replay_is_refused(drill_server: InProcessServer) -> None:
    challenge = _challenge(drill_server, "alice")
    assert challenge["index"] == 1 and len(base64.b64decode(challenge["challenge"])) == 32
    proof = _proof(challenge, drill_server.shares[0])
    answer = ok(_send(drill_server, "alice", challenge["challenge_id"], proof))
    assert answer["valid"] is True and answer["verified_at"]
    with drill_server.client() as http:
        alice = ok(http.get("/v1/sys/custodians"))["custodians"][0]
    assert (alice["verified_by"], alice["last_verified_at"]) == ("proof", answer["verified_at"])
    assert_error(_send(drill_server, "alice", challenge["challenge_id"], proof),
                 409, "challenge_used")
    assert _refusals(drill_server, "challenge_used")


def test_a_forged_proof_is_refused(drill_server: InProcessServer) -> None:
    challenge = _challenge(drill_server, "bob")
    # A well-formed proof with another seal's share: the right shape, the wrong secret.
    config, foreign = create_shamir_seal(bytes(32), 4, 2)
    context = proof_context(base64.b64decode(challenge["challenge"]), "bob", 2,
                            challenge["generation"])
    forged = vss.prove_possession(decode_share(foreign[1]), list(config.commitments), context)
    assert_error(_send(drill_server, "bob", challenge["challenge_id"],
                       base64.b64encode(forged).decode()), 400, "invalid_proof")
    # The refused attempt spent the challenge: no second try against it.
    honest = _proof(challenge, drill_server.shares[1])
    assert_error(_send(drill_server, "bob", challenge["challenge_id"], honest),
                 409, "challenge_used")
    garbage = _challenge(drill_server, "bob")
    assert_error(_send(drill_server, "bob", garbage["challenge_id"],
                       base64.b64encode(b"\x01" * 64).decode()), 400, "invalid_proof")
    assert len(_refusals(drill_server, "invalid_proof")) >= 2


def test_a_proof_for_another_custodian_or_challenge_is_refused(
        drill_server: InProcessServer) -> None:
    alice_challenge = _challenge(drill_server, "alice")
    bob_share = drill_server.shares[1]
    # bob's share, presented as alice's, against alice's challenge.
    as_alice = _proof(alice_challenge, bob_share, name="alice", index=2)
    assert_error(_send(drill_server, "alice", alice_challenge["challenge_id"], as_alice),
                 400, "invalid_proof")
    # bob's own proof, sent with a challenge issued to alice.
    alice_again = _challenge(drill_server, "alice")
    bobs = _proof(alice_again, bob_share, name="bob", index=2)
    assert_error(_send(drill_server, "bob", alice_again["challenge_id"], bobs),
                 400, "invalid_proof")
    # A valid proof for one challenge does not answer another.
    first, second = _challenge(drill_server, "dan"), _challenge(drill_server, "dan")
    proof = _proof(first, drill_server.shares[3])
    assert_error(_send(drill_server, "dan", second["challenge_id"], proof),
                 400, "invalid_proof")
    assert ok(_send(drill_server, "dan", first["challenge_id"], proof))["valid"]


def test_expired_unknown_and_too_many_challenges(drill_server: InProcessServer) -> None:
    challenge = _challenge(drill_server, "carol")
    proof = _proof(challenge, drill_server.shares[2])
    drill_server.advance_clock(301)
    assert_error(_send(drill_server, "carol", challenge["challenge_id"], proof),
                 409, "challenge_expired")
    assert _refusals(drill_server, "challenge_expired")
    assert_error(drill_server.anonymous().post("/v1/sys/custodians/nobody/challenge"),
                 404, "not_found")
    assert_error(_send(drill_server, "carol", "no-such-challenge", proof), 404, "not_found")
    assert_error(_send(drill_server, "carol", challenge["challenge_id"], "not base64!"),
                 400, "invalid_request")
    for _ in range(4):  # one address holds at most 4 open challenges (review F14)
        _challenge(drill_server, "carol")
    refused = assert_error(drill_server.anonymous().post("/v1/sys/custodians/carol/challenge"),
                           429, "rate_limited")
    assert "from this address" in refused["message"]
    drill_server.advance_clock(301)  # they expire: the address may ask again


def test_status_needs_sys_read(drill_server: InProcessServer) -> None:
    assert_error(drill_server.anonymous().get("/v1/sys/custodians"), 401, "unauthenticated")
    with drill_server.client() as http:
        token = ok(http.post("/v1/auth/tokens", json={"policies": ["key-user"]}))["token"]
    with drill_server.client(token) as http:
        assert_error(http.get("/v1/sys/custodians"), 403, "forbidden")


def test_init_refuses_k_equal_n_unless_forced(fresh_inprocess: InProcessServer) -> None:
    error = assert_error(fresh_inprocess.anonymous().post("/v1/sys/init",
                                    json={"shares": 3, "threshold": 3}), 400, "invalid_request")
    assert "losing any one share locks the data" in error["message"]
    assert_error(fresh_inprocess.anonymous().post("/v1/sys/init",
                            json={"shares": 3, "threshold": 3, "force": "yes"}),
                 400, "invalid_request")
    assert fresh_inprocess.init(3, 3, force=True)["threshold"] == 3
