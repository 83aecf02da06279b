"""An enrolled node that starts sealed is handed the root key by an unsealed peer.

Two nodes share one store (as cluster nodes share PostgreSQL): node A is unsealed
by custodians; node B starts sealed with a node key. B is enrolled as a ``node``
seal through the custodian ceremony, then one pass of each node's link moves the
root key from A to B through the store: sealed to B's key, signed by the audit key
B pins. Everything a database writer could do instead is tried and refused: a node
entry of their own, a response of their own, a response to another request. And
sealing the cluster on A seals B, after which nothing hands the root key out.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from http_helpers import create_key, encrypt, ok
from inprocess_server import InProcessServer
from keyquorum.audit.keys import AuditKeys
from keyquorum.config import Settings
from keyquorum.crypto import kem_box
from keyquorum.runtime.node_link import NodeLink
from keyquorum.seal.entry import SealEntry
from keyquorum.service.node_handoff import (
    REQUEST_PREFIX,
    RESPONSE_PREFIX,
    HandoffResponse,
    box_context,
    raise_epoch,
    signed_message,
)
from sealset_support import add_seal

NODE_B = "node-b"


def key_pair(directory: Path) -> tuple[Path, str]:
    private_pem, public_pem = kem_box.generate()
    path = directory / "node.key"
    path.write_text(private_pem)
    path.chmod(0o600)
    return path, public_pem


def store_entries(server: InProcessServer) -> dict[str, bytes]:
    with sqlite3.connect(server.data_dir / "keyquorum.db") as db:
        return {name: bytes(value) for name, value in
                db.execute("SELECT name, value FROM system_entries")}


def write_entry(server: InProcessServer, name: str, value: bytes) -> None:
    """What a database writer can do: any row, without any key."""
    with sqlite3.connect(server.data_dir / "keyquorum.db") as db:
        db.execute("INSERT OR REPLACE INTO system_entries (name, value, updated_at) "
                   "VALUES (?, ?, 0)", (name, value))


def audit(server: InProcessServer, operation: str) -> list[dict[str, object]]:
    with server.client() as http:
        records: list[dict[str, object]] = ok(http.get("/v1/audit",
                                                        params={"operation": operation}))["records"]
    return records


class Cluster:
    def __init__(self, a: InProcessServer, b: InProcessServer, public_pem: str) -> None:
        self.a, self.b, self.public_pem = a, b, public_pem
        assert a.core is not None and b.core is not None
        self.link_a = NodeLink(a.core, a.core.node)
        self.link_b = NodeLink(b.core, NODE_B)

    def enrol(self, public_pem: str | None = None) -> dict[str, object]:
        with self.a.client() as http:
            return add_seal(http, {"type": "node", "id": NODE_B,
                                   "public_key": public_pem or self.public_pem},
                            self.a.shares[:2])

    def exchange(self) -> None:
        """B asks, A answers, B reads the answer: one pass of each link, in order."""
        self.link_b.tick()
        self.link_a.tick()
        self.link_b.tick()


@pytest.fixture
def cluster(tmp_path: Path, migrated_store: Path) -> Iterator[Cluster]:
    a = InProcessServer(tmp_path / "store", run_scheduler=False, migrated=migrated_store)
    b: InProcessServer | None = None
    try:
        a.start()
        a.init()
        a.unseal()
        with a.client() as http:
            trust = ok(http.get("/v1/audit/public-key"))["key_id"]
        key_file, public_pem = key_pair(tmp_path)
        b = InProcessServer(tmp_path / "store", run_scheduler=False, config={
            "node_name": NODE_B, "node_key_file": str(key_file), "node_trust_key": trust})
        b.start()
        b.root_token = a.root_token
        yield Cluster(a, b, public_pem)
    finally:
        if b is not None:
            b.stop()
        a.stop()


def test_an_enrolled_node_is_unsealed_by_its_peer_and_serves_the_same_keys(
        cluster: Cluster) -> None:
    with cluster.a.client() as http:
        create_key(http, "shared/k", "aes-256-gcm")
        made = encrypt(http, "shared/k", b"across nodes")
    assert cluster.enrol()["type"] == "node"
    assert cluster.b.core is not None and cluster.b.core.sealed

    cluster.exchange()

    assert not cluster.b.core.sealed
    with cluster.b.client() as http:
        opened = ok(http.post("/v1/keys/shared/k/decrypt",
                              json={"ciphertext": made["ciphertext"]}))
    assert opened["plaintext"] == "YWNyb3NzIG5vZGVz"
    [handed] = audit(cluster.a, "sys:node-unseal")
    assert handed["outcome"] == "ok" and handed["detail"]["node"] == NODE_B  # type: ignore[index]
    unseals = [r for r in audit(cluster.a, "sys:unseal")
               if (r.get("detail") or {}).get("method") == "node-handoff"]  # type: ignore[union-attr,attr-defined]
    assert len(unseals) == 1
    # Nothing is left in the store to replay.
    assert not [n for n in store_entries(cluster.a) if n.startswith(("node/request/",
                                                                     "node/response/"))]


def test_a_node_nobody_enrolled_is_never_answered(cluster: Cluster) -> None:
    cluster.exchange()
    assert cluster.b.core is not None and cluster.b.core.sealed
    assert RESPONSE_PREFIX + NODE_B not in store_entries(cluster.a)


def test_a_node_entry_written_into_the_database_is_refused_and_audited(
        cluster: Cluster) -> None:
    forged = SealEntry("node", NODE_B, {"public_key": cluster.public_pem,
                                        "fingerprint": kem_box.public_fingerprint(
                                            cluster.public_pem)},
                       b"\x00" * 32, 0.0)
    write_entry(cluster.a, "seal/set/" + NODE_B, forged.to_json())

    cluster.exchange()
    cluster.exchange()

    assert cluster.b.core is not None and cluster.b.core.sealed
    assert RESPONSE_PREFIX + NODE_B not in store_entries(cluster.a)
    [refused] = audit(cluster.a, "sys:node-unseal")  # once, not every second
    assert refused["outcome"] == "denied"
    assert "does not verify" in refused["detail"]["reason"]  # type: ignore[index]


def test_a_response_not_signed_by_the_pinned_audit_key_is_ignored(cluster: Cluster) -> None:
    """A writer seals a root key to B's public key and signs with a key of their own.
    Even the *right* root key is not taken (a writer who replaced the whole store would
    hand over their own, whose keyring they made too): only the pinned key is trusted."""
    cluster.enrol()
    cluster.link_b.tick()  # B's request, with its nonce
    request = json.loads(store_entries(cluster.a)[REQUEST_PREFIX + NODE_B])
    theirs = AuditKeys(AuditKeys.generate_material())
    assert cluster.a.core is not None
    box = kem_box.seal_to(cluster.public_pem, cluster.a.core.root_key(),
                          context=box_context(NODE_B, request["nonce"]))
    forged = HandoffResponse(NODE_B, request["nonce"], box, theirs.public_pem,
                             theirs.sign(signed_message(NODE_B, request["nonce"], 0, box)),
                             "evil", 0.0, 0)
    write_entry(cluster.a, RESPONSE_PREFIX + NODE_B, forged.to_json())

    cluster.link_b.tick()

    assert cluster.b.core is not None and cluster.b.core.sealed


def test_a_replayed_answer_to_an_earlier_request_does_not_open_the_node(
        cluster: Cluster) -> None:
    cluster.enrol()
    cluster.link_b.tick()
    cluster.link_a.tick()
    earlier = store_entries(cluster.a)[RESPONSE_PREFIX + NODE_B]  # a writer keeps a copy
    cluster.link_b.tick()
    assert cluster.b.core is not None and not cluster.b.core.sealed
    cluster.b.core.seal()
    cluster.link_b.tick()  # a new request, with a new nonce

    write_entry(cluster.a, RESPONSE_PREFIX + NODE_B, earlier)  # genuine, signed, stale
    cluster.link_b.tick()

    assert cluster.b.core.sealed


def test_sealing_the_cluster_seals_every_node_and_nobody_hands_the_key_out(
        cluster: Cluster) -> None:
    cluster.enrol()
    cluster.exchange()
    assert cluster.b.core is not None and not cluster.b.core.sealed
    cluster.link_b.tick()  # B notes the epoch it is open under

    with cluster.a.client() as http:
        sealed = ok(http.post("/v1/sys/seal"))
    assert sealed["sealed"] is True
    cluster.link_b.tick()
    assert cluster.b.core.sealed

    for _ in range(2):
        cluster.exchange()
    assert cluster.b.core.sealed and cluster.a.core is not None and cluster.a.core.sealed
    [record] = [r for r in audit_after_unseal(cluster) if r.get("operation") == "sys:seal"]
    assert record["detail"]["seal_epoch"] == "1"  # type: ignore[index]


def audit_after_unseal(cluster: Cluster) -> list[dict[str, object]]:
    cluster.a.unseal()
    return audit(cluster.a, "sys:seal")


def test_removing_the_node_seal_stops_the_handoff(cluster: Cluster) -> None:
    cluster.enrol()
    with cluster.a.client() as http:
        ok(http.delete(f"/v1/sys/seals/{NODE_B}"))
    cluster.exchange()
    assert cluster.b.core is not None and cluster.b.core.sealed


def test_node_settings_go_together_and_the_key_file_must_be_private(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="go together"):
        Settings(data_dir=tmp_path, node_key_file=tmp_path / "k").validate()
    with pytest.raises(ValueError, match="node_name"):
        Settings(data_dir=tmp_path, node_name="Not A Seal Id").validate()
    from keyquorum.runtime.node_link import load_node_key

    path, _ = key_pair(tmp_path)
    path.chmod(0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        load_node_key(path)


def test_an_answer_made_before_the_cluster_was_sealed_does_not_open_the_node(
        cluster: Cluster) -> None:
    """A genuine answer that reaches B only after someone sealed the cluster (a database
    writer held it back, or B read it late) must not open B: the cluster is sealed."""
    cluster.enrol()
    cluster.link_b.tick()  # B asks
    cluster.link_a.tick()  # A answers, under the epoch it is open under
    assert RESPONSE_PREFIX + NODE_B in store_entries(cluster.a)
    with cluster.a.client() as http:
        assert ok(http.post("/v1/sys/seal"))["sealed"] is True  # raises the epoch

    cluster.link_b.tick()  # the same request's answer, signed and for B's nonce

    assert cluster.b.core is not None and cluster.b.core.sealed


def test_a_node_that_has_not_yet_seen_a_cluster_seal_does_not_answer(
        cluster: Cluster) -> None:
    """The epoch was raised by another node; A has not followed it yet (its link's next
    pass will): its responder must not hand the root key out meanwhile."""
    cluster.enrol()
    cluster.link_b.tick()
    assert cluster.a.core is not None
    with cluster.a.core.engine.begin() as conn:
        raise_epoch(conn, cluster.a.core.clock.now())

    assert cluster.link_a.responder.answer_requests() == []

    assert RESPONSE_PREFIX + NODE_B not in store_entries(cluster.a)
