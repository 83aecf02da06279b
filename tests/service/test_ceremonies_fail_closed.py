"""The ceremonies are units of work too: no audit record, no change.

``test_changes_fail_closed`` covers keys, policies, tokens, sinks, approvals and
dual control; this covers the changes made by people holding shares or seals:
proposing, completing and removing a seal, break glass (generate-root), a
custodian's acknowledgement, sealing the cluster, and a node handing the root key
to an enrolled peer. Audit storage is broken under the live app the same way (a
trigger on ``audit_records``); each change answers 503 ``audit_unavailable`` and,
once audit works again, none of them has landed.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from audit_breakage import audit_storage_broken
from http_helpers import ok
from inprocess_server import InProcessServer
from keyquorum.client._custodians import CustodianChallenge, make_proof
from keyquorum.crypto import kem_box
from keyquorum.runtime.node_link import NodeLink
from keyquorum.service.node_handoff import RESPONSE_PREFIX, SEAL_EPOCH
from keyquorum.storage.system_repo import get_entry
from sealset_support import add_seal

PHRASE = "a passphrase for the fail-closed test"


def refused(answer: httpx.Response) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "audit_unavailable"


def seal_ids(http: httpx.Client) -> set[str]:
    return {s["id"] for s in ok(http.get("/v1/sys/seals"))["seals"]}


def stored(server: InProcessServer, name: str) -> bytes | None:
    assert server.core is not None
    with server.core.engine.connect() as conn:
        return get_entry(conn, name)


def test_no_seal_change_lands_when_its_record_cannot_be_written(
        inprocess_server: InProcessServer) -> None:
    server = inprocess_server
    with server.client() as root:
        add_seal(root, {"type": "passphrase", "id": "kept", "passphrase": PHRASE},
                 server.shares[:2])
        with audit_storage_broken(server.data_dir):
            # proposing one
            refused(root.post("/v1/sys/seals", json={"type": "passphrase", "id": "never",
                                                     "passphrase": PHRASE}))
            # removing one
            refused(root.delete("/v1/sys/seals/kept"))
        assert ok(root.get("/v1/sys/seal-add")).get("started") is not True
        assert seal_ids(root) == {"shamir", "kept"}

        # completing one: the proposal stands, the custodian's last share is refused
        proposed = ok(root.post("/v1/sys/seals", json={"type": "passphrase", "id": "late",
                                                       "passphrase": PHRASE}))
    with server.anonymous() as anyone:
        ok(anyone.post("/v1/sys/seal-add/update",
                       json={"nonce": proposed["nonce"], "share": server.shares[0]}))
        with audit_storage_broken(server.data_dir):
            refused(anyone.post("/v1/sys/seal-add/update",
                                json={"nonce": proposed["nonce"], "share": server.shares[1]}))
    with server.client() as root:
        assert seal_ids(root) == {"shamir", "kept"}
        assert ok(root.post("/v1/audit/verify", json={}))["ok"] is True


def test_break_glass_mints_nothing_when_its_record_cannot_be_written(
        inprocess_server: InProcessServer) -> None:
    server = inprocess_server
    _private, public_pem = kem_box.generate()
    with server.anonymous() as anyone:
        with audit_storage_broken(server.data_dir):
            refused(anyone.post("/v1/sys/generate-root/init",
                                json={"public_key": public_pem, "share": server.shares[0]}))
        assert ok(anyone.get("/v1/sys/generate-root")).get("started") is not True

        opened = ok(anyone.post("/v1/sys/generate-root/init",
                                json={"public_key": public_pem, "share": server.shares[0]}))
        with audit_storage_broken(server.data_dir):
            refused(anyone.post("/v1/sys/generate-root/update",
                                json={"nonce": opened["nonce"], "share": server.shares[1]}))
        status = ok(anyone.get("/v1/sys/generate-root"))
        assert status["progress"] == 1 and "encoded_token" not in status
    with server.client() as root:
        tokens = ok(root.get("/v1/audit", params={"operation": "sys:generate-root"}))
        assert all(r.get("outcome") != "ok" or "new_accessor" not in (r.get("detail") or {})
                   for r in tokens["records"])


def test_a_custodian_is_not_acknowledged_when_the_record_cannot_be_written(
        fresh_inprocess: InProcessServer) -> None:
    """A share counts toward the quorum margin only once its custodian proved it; a proof
    that could not be recorded proved nothing."""
    server = fresh_inprocess
    server.init(3, 2, custodians=["ann", "ben", "cy"])
    server.unseal(server.shares[:2])
    with server.anonymous() as anyone:
        challenge = CustodianChallenge.from_json(
            ok(anyone.post("/v1/sys/custodians/cy/challenge")))
        proof = make_proof(challenge, server.shares[2])
        with audit_storage_broken(server.data_dir):
            refused(anyone.post("/v1/sys/custodians/cy/proof", json=proof))
    with server.client() as root:
        status = ok(root.get("/v1/sys/custodians"))
    assert status["unacknowledged"] == ["cy"]


def test_the_cluster_is_not_sealed_unrecorded_and_no_peer_is_answered_unrecorded(
        inprocess_server: InProcessServer, tmp_path: Path) -> None:
    """Sealing refuses rather than seal unrecorded (every request is audited first, as in
    Vault); a node's answer to an enrolled peer is written with its record or not at all."""
    server = inprocess_server
    assert server.core is not None
    with server.client() as root:
        with audit_storage_broken(server.data_dir):
            refused(root.post("/v1/sys/seal"))
        assert ok(root.get("/v1/sys/seal-status"))["sealed"] is False
    assert stored(server, SEAL_EPOCH) is None

    private_pem, public_pem = kem_box.generate()
    with server.client() as root:
        add_seal(root, {"type": "node", "id": "peer", "public_key": public_pem},
                 server.shares[:2])
    key_file = tmp_path / "peer.key"
    key_file.write_text(private_pem)
    key_file.chmod(0o600)
    with server.client() as root:
        trust = ok(root.get("/v1/audit/public-key"))["key_id"]
    peer = InProcessServer(server.data_dir, run_scheduler=False, config={
        "node_name": "peer", "node_key_file": str(key_file), "node_trust_key": trust})
    peer.start()
    try:
        assert peer.core is not None
        NodeLink(peer.core, "peer").tick()  # the request
        with audit_storage_broken(server.data_dir):
            NodeLink(server.core, server.core.node).tick()  # the answer cannot be recorded
        assert stored(server, RESPONSE_PREFIX + "peer") is None
        NodeLink(peer.core, "peer").tick()
        assert peer.core.sealed
    finally:
        peer.stop()
