"""Chains per node braided by signed checkpoints: what verification finds when an insider
with write access to the database (and no signing key) edits the store.

Two nodes append to one store, each through its own ``AuditLog`` and engine (as two
processes would), on SQLite and on PostgreSQL; the tampering is SQL run straight on
the tables. Each fault named in docs/CLUSTER.md has its test: a record changed or
removed in one node's chain, a chain cut behind a braid (its tail, or all of it), a
node missing from a braid, a braid removed or not following its predecessor; and
the trail still verifies offline from an export, and a pre-braid single chain
(node 1, old checkpoints) still verifies as it was.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from keyquorum.audit.checkpoints import Checkpoint, stored_checkpoints
from keyquorum.audit.log import AuditLog
from keyquorum.audit.offline import verify_file
from keyquorum.audit.records import AuditRecord
from keyquorum.audit.trail import AuditTrail
from keyquorum.clock import SystemClock
from keyquorum.seal.barrier import Barrier, Keyring
from keyquorum.storage.engine import open_engine

pytestmark = pytest.mark.postgresql


def record(n: int, node: str) -> AuditRecord:
    return AuditRecord(time=1_700_000_000.0 + n, request_id=f"{node}-{n}", identity="acc1",
                       operation="encrypt", key="app/k", key_version=1, outcome="ok",
                       error_code=None, client="127.0.0.1")


class Node:
    """One node: its own engine, audit log and trail, all unsealed with one barrier."""

    def __init__(self, engine: Engine, name: str, barrier: Barrier) -> None:
        self.name = name
        self.engine = open_engine(str(engine.url.render_as_string(hide_password=False)))
        self.audit = AuditLog(self.engine, node=name)
        self.audit.start()
        self.trail = AuditTrail(self.engine, self.audit, SystemClock())
        self.trail.open(barrier)
        assert self.trail.unseal_checkpoint_done()

    def write(self, count: int) -> None:
        for n in range(count):
            self.audit.write_sync(record(n, self.name))

    def close(self) -> None:
        self.audit.stop()
        self.engine.dispose()


@pytest.fixture
def nodes(store_engine: Engine) -> Iterator[tuple[Node, Node]]:
    barrier = Barrier(Keyring.generate())
    a = Node(store_engine, "node-a", barrier)
    b = Node(store_engine, "node-b", barrier)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def sql(engine: Engine, statement: str, **params: object) -> None:
    with engine.begin() as conn:
        conn.execute(text(statement), params)


def braided(a: Node, b: Node) -> Checkpoint:
    """Both nodes write, a braid is signed over both chains, then both write on."""
    a.write(6)
    b.write(4)
    made = a.trail.checkpoint()
    assert made is not None and made.braid is not None
    a.write(2)
    b.write(2)
    return made


def test_two_nodes_append_to_chains_of_their_own_and_one_braid_names_both(
        nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    braid = braided(a, b)
    assert a.audit.node_id != b.audit.node_id
    assert {node for node, _seq, _hash in braid.heads} == {a.audit.node_id, b.audit.node_id}
    assert dict((node, seq) for node, seq, _hash in braid.heads) == {
        a.audit.node_id: 6, b.audit.node_id: 4}
    report = b.trail.verify()
    assert report.ok, report.first_bad
    assert report.records == 14 and report.braids == 1
    by_node = {chain.node: chain for chain in report.chains}
    assert by_node[a.audit.node_id].head.seq == 8
    assert by_node[a.audit.node_id].last_checkpoint == 6
    assert by_node[b.audit.node_id].head.seq == 6
    assert report.unsigned_tail == 4
    assert report.to_json()["nodes"][0]["node"] == a.audit.node_id


def test_a_record_changed_in_one_nodes_chain_is_named_with_its_node(
        nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    braided(a, b)
    sql(a.engine, "UPDATE audit_records SET outcome = 'denied' WHERE node = :n AND seq = 3",
        n=b.audit.node_id)
    fault = a.trail.verify().first_bad
    assert fault is not None and (fault.node, fault.id) == (b.audit.node_id, 3)
    assert "changed" in fault.reason


def test_a_record_removed_from_one_nodes_chain_is_named(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    braided(a, b)
    sql(a.engine, "DELETE FROM audit_records WHERE node = :n AND seq = 2", n=a.audit.node_id)
    fault = b.trail.verify().first_bad
    assert fault is not None and (fault.node, fault.id) == (a.audit.node_id, 2)
    assert "missing" in fault.reason


def test_a_chain_cut_behind_a_braid_and_its_head_moved_back_is_found(
        nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    braided(a, b)  # the braid names b's record 4
    node = b.audit.node_id
    sql(a.engine, "DELETE FROM audit_records WHERE node = :n AND seq > 2", n=node)
    with a.engine.connect() as conn:
        last = conn.execute(text("SELECT chain_hash FROM audit_records WHERE node = :n "
                                 "AND seq = 2"), {"n": node}).scalar_one()
    sql(a.engine, "UPDATE audit_head SET seq = 2, chain_hash = :h WHERE id = :n", h=last, n=node)
    fault = a.trail.verify().first_bad
    assert fault is not None and (fault.node, fault.id) == (node, 3)
    assert "tail was cut" in fault.reason


def test_a_whole_node_chain_removed_behind_a_braid_is_found(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    braided(a, b)
    node = b.audit.node_id
    for table, column in (("audit_records", "node"), ("audit_head", "id"),
                          ("audit_nodes", "id")):
        sql(a.engine, f"DELETE FROM {table} WHERE {column} = :n", n=node)
    fault = a.trail.verify().first_bad
    assert fault is not None and fault.node == node and "tail was cut" in fault.reason


def forge_braid(a: Node, heads: tuple[tuple[int, int, str], ...], previous: str) -> int:
    """Store a braid signed with the audit key itself (what a faulty signer would make,
    or an attacker holding the key): its signature is good, its content is not."""
    keys = a.trail.keys
    with a.engine.connect() as conn:
        newest = stored_checkpoints(conn)[-1]
    assert newest.braid is not None
    unsigned = Checkpoint(0, "0" * 64, newest.time + 1, keys.key_id, "",
                          braid=newest.braid + 1, previous=previous, heads=heads)
    signature = base64.b64encode(keys.sign(unsigned.message())).decode()
    for node, seq, chain_hash in heads:
        sql(a.engine, "INSERT INTO audit_checkpoints (seq, chain_hash, time, key_id, "
            "signature, node, braid, previous) VALUES (:s, :h, :t, :k, :sig, :n, :b, :p)",
            s=seq, h=chain_hash, t=unsigned.time, k=keys.key_id, sig=signature, n=node,
            b=unsigned.braid, p=previous)
    return newest.braid + 1


def test_a_removed_braid_breaks_the_braid_chain(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    braided(a, b)  # braid 1
    assert b.trail.checkpoint() is not None  # braid 2
    b.write(1)
    assert a.trail.checkpoint() is not None  # braid 3
    sql(a.engine, "DELETE FROM audit_checkpoints WHERE braid = 2")
    fault = a.trail.verify().first_bad
    assert fault is not None and "braid 2 is missing" in fault.reason


def test_a_renumbered_braid_fails_its_signature(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    braided(a, b)
    assert b.trail.checkpoint() is not None
    assert a.trail.checkpoint() is not None
    sql(a.engine, "DELETE FROM audit_checkpoints WHERE braid = 2")
    sql(a.engine, "UPDATE audit_checkpoints SET braid = 2 WHERE braid = 3")
    fault = a.trail.verify().first_bad
    assert fault is not None and "braid 2 has a bad signature" in fault.reason


def test_a_braid_that_does_not_follow_its_predecessor_is_found(
        nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    braid = braided(a, b)
    number = forge_braid(a, braid.heads, previous="0" * 64)  # names no braid before it
    fault = a.trail.verify().first_bad
    assert fault is not None
    assert f"braid {number} does not follow braid {number - 1}" in fault.reason


def test_an_edited_braid_fails_its_signature(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    braided(a, b)
    sql(a.engine, "DELETE FROM audit_checkpoints WHERE braid = 1 AND node = :n",
        n=b.audit.node_id)  # one node's entry left: the braid read back is another one
    fault = a.trail.verify().first_bad
    assert fault is not None and "braid 1 has a bad signature" in fault.reason


def test_a_braid_signed_without_a_node_it_must_name_is_found(
        nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    braid = braided(a, b)
    number = forge_braid(a, tuple(h for h in braid.heads if h[0] != b.audit.node_id),
                         previous=braid.braid_hash())
    fault = a.trail.verify().first_bad
    assert fault is not None and fault.node == b.audit.node_id
    assert f"node {b.audit.node_id} is missing from braid {number}" in fault.reason


def test_an_export_of_two_chains_verifies_offline_and_a_cut_in_it_is_found(
        nodes: tuple[Node, Node], tmp_path: Path) -> None:
    a, b = nodes
    braided(a, b)
    export = tmp_path / "audit.jsonl"
    export.write_bytes(b"".join(a.trail.export()))
    pem = a.trail.keys.public_pem
    good = verify_file(export, pem)
    assert good.ok, good.first_bad
    assert good.records == 14 and good.braids == 1
    lines = [json.loads(line) for line in export.read_text().splitlines()]
    assert lines[0]["version"] == 2
    node = b.audit.node_id
    kept = [line for line in lines
            if not (line["type"] == "record" and line.get("node") == node and line["id"] > 2)]
    export.write_text("".join(json.dumps(line) + "\n" for line in kept))
    fault = verify_file(export, pem).first_bad
    assert fault is not None and fault.node == node


def test_listing_pages_across_two_chains_repeat_and_skip_nothing(
        nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    for _ in range(3):
        a.write(5)
        b.write(4)
    seen: list[int] = []
    token: str | None = None
    while True:
        page, token = b.audit.query(limit=4, page_token=token)
        seen.extend(int(r.id) for r in page if r.id is not None)
        if token is None:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen))
    with a.engine.connect() as conn:
        stored = {int(i) for i in conn.execute(text("SELECT id FROM audit_records")).scalars()}
    assert set(seen) == stored


@pytest.fixture
def one_node(store_engine: Engine) -> Iterator[tuple[AuditLog, AuditTrail]]:
    """One node's audit log and trail on the store, unsealed, its opening checkpoint done."""
    audit = AuditLog(store_engine)
    audit.start()
    trail = AuditTrail(store_engine, audit, SystemClock())
    trail.open(Barrier(Keyring.generate()))
    try:
        assert trail.unseal_checkpoint_done()
        yield audit, trail
    finally:
        audit.stop()


def test_a_listing_id_moved_within_a_chain_is_found(
        store_engine: Engine, one_node: tuple[AuditLog, AuditTrail]) -> None:
    """Ids are not linked (PostgreSQL hands them out across nodes), but within a chain
    they follow the appends: an insider reordering the listing is caught."""
    audit, trail = one_node
    for n in range(6):
        audit.write_sync(record(n, "one"))
    sql(store_engine, "UPDATE audit_records SET id = id + 1000 WHERE seq = 2")
    fault = trail.verify().first_bad
    assert fault is not None and fault.id == 3 and "listed out of order" in fault.reason


def test_a_kept_checkpoint_names_the_cut_even_where_a_later_braid_agrees_with_the_log(
        store_engine: Engine, one_node: tuple[AuditLog, AuditTrail]) -> None:
    """An insider cuts the tail, moves the head back and lets the service write on: a
    braid signed afterwards pins the rewritten record at the very place the kept
    checkpoint pins the original. The fault starts at or before that place (it read
    one later when the agreeing braid was looked at first; CI at de2e822)."""
    audit, trail = one_node
    for n in range(5):
        audit.write_sync(record(n, "before"))
        if n == 1:
            assert trail.checkpoint() is not None  # so the kept braid is not the first
    kept = trail.checkpoint()
    assert kept is not None
    place = next(seq for _node, seq, _hash in kept.heads)
    sql(store_engine, "DELETE FROM audit_records WHERE seq > :s", s=place - 2)
    sql(store_engine, "DELETE FROM audit_checkpoints")
    with store_engine.connect() as conn:
        last = conn.execute(text("SELECT chain_hash FROM audit_records WHERE seq = :s"),
                            {"s": place - 2}).scalar_one()
    sql(store_engine, "UPDATE audit_head SET seq = :s, chain_hash = :h", s=place - 2, h=last)
    for n in range(2):  # the service writes on, into the shortened chain
        audit.write_sync(record(n, "after"))
    later = trail.checkpoint()
    assert later is not None
    assert next(seq for _node, seq, _hash in later.heads) == place
    assert trail.verify().ok  # inside, the rewritten chain is consistent
    fault = trail.verify([kept]).first_bad
    assert fault is not None and fault.id <= place, fault
