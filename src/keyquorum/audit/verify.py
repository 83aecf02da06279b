"""Checking the audit trail, live or exported, and naming the first record that is wrong.

The same checker runs on the live database (``POST /v1/audit/verify``) and on
an export file with no server (``keyquorum audit verify --file``). It streams
records (each node's chain in order; chains may interleave) and stops at the first
fault:

- a record missing (a gap in its chain), repeated or out of order;
- a record whose link does not match (changed, inserted or moved, or moved into
  another node's chain: each chain starts from its node's genesis);
- live, a record whose listing ``id`` (not linked: ids come from the database, and
  on PostgreSQL not in commit order across nodes) is not above the one before it in
  its chain (ids are given in append order within a node, so listings were
  reordered);
- a signed checkpoint or braid whose signature is bad, or that was made by another
  key; two different braids with one number;
- a chain that does not reach a checkpoint's or braid's link (edited and relinked
  by someone without the signing key), or that ends before it (the tail, or the
  whole chain, was cut behind it);
- for the live log or an export's end lines, a chain head that disagrees with the
  chain's last record;
- braids: numbered 1, 2, 3, ... with none missing, each naming the hash of the one
  before (a braid removed, replaced or reordered), a node named by a braid and not
  by the next one or named at an earlier place, and a node the registry says a
  braid must name (it registered before that braid) and that it does not name.

Records after a chain's last good checkpoint are protected by the chain alone; the
report says how many, per chain, so an auditor knows what a signature vouches for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from keyquorum.audit.chain import GENESIS, LEGACY_NODE, ChainHead, genesis, link
from keyquorum.audit.checkpoints import Checkpoint
from keyquorum.audit.keys import key_id_of


@dataclass(frozen=True, slots=True)
class Fault:
    """The first thing found wrong: the record it concerns (its place in ``node``'s chain)
    and why."""

    id: int
    reason: str
    node: int = LEGACY_NODE

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "reason": self.reason}
        if self.node != LEGACY_NODE:
            body["node"] = self.node
        return body


@dataclass(frozen=True, slots=True)
class ChainReport:
    """One node's chain: how many records were checked, where it ends, what is signed."""

    node: int
    records: int
    head: ChainHead
    last_checkpoint: int | None

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node, "records": self.records,
                "head": {"seq": self.head.seq, "chain_hash": self.head.chain_hash},
                "last_checkpoint": self.last_checkpoint,
                "unsigned_tail": self.head.seq - (self.last_checkpoint or 0)}


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The whole trail. ``head`` and ``last_checkpoint`` are node 1's (the first chain's
    when there is no node 1); ``records`` and ``unsigned_tail`` count every chain."""

    ok: bool
    records: int
    head: ChainHead
    checkpoints: int
    last_checkpoint: int | None
    first_bad: Fault | None = None
    chains: tuple[ChainReport, ...] = field(default=())
    braids: int = 0

    @property
    def unsigned_tail(self) -> int:
        """Records after the last good checkpoint: protected by the chain, not a signature."""
        if self.chains:
            return sum(c.head.seq - (c.last_checkpoint or 0) for c in self.chains)
        return self.head.seq - (self.last_checkpoint or 0)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": self.ok, "records": self.records,
            "head": {"seq": self.head.seq, "chain_hash": self.head.chain_hash},
            "checkpoints": self.checkpoints, "last_checkpoint": self.last_checkpoint,
            "unsigned_tail": self.unsigned_tail, "braids": self.braids,
        }
        if len(self.chains) > 1 or any(c.node != LEGACY_NODE for c in self.chains):
            body["nodes"] = [chain.to_json() for chain in self.chains]
        if self.first_bad is not None:
            body["first_bad"] = self.first_bad.to_json()
        return body


class _Stop(Exception):
    def __init__(self, fault: Fault) -> None:
        self.fault = fault


class _Chain:
    """A node's chain as the records stream past: the next place, the last link."""

    __slots__ = ("count", "expected", "last_good", "last_id", "node", "previous")

    def __init__(self, node: int) -> None:
        self.node = node
        self.expected = 1
        self.previous = genesis(node)
        self.count = 0
        self.last_good: int | None = None
        self.last_id = 0  # a stored row's listing id: it grows along its chain


def _check_signatures(checkpoints: Sequence[Checkpoint], public_pem: str) -> None:
    key_id = key_id_of(public_pem)
    for checkpoint in checkpoints:
        what = (f"the checkpoint at record {checkpoint.seq}" if checkpoint.braid is None
                else f"braid {checkpoint.braid}")
        if checkpoint.key_id != key_id:
            raise _Stop(Fault(checkpoint.seq, f"{what} was signed by another key",
                              checkpoint.node))
        if not checkpoint.signature_valid(public_pem):
            raise _Stop(Fault(checkpoint.seq, f"{what} has a bad signature", checkpoint.node))


def _braids(checkpoints: Sequence[Checkpoint]) -> dict[int, Checkpoint]:
    """One entry per braid number (stored and held-outside copies agree, or it is a fork)."""
    braids: dict[int, Checkpoint] = {}
    for checkpoint in checkpoints:
        if checkpoint.braid is None:
            continue
        seen = braids.setdefault(checkpoint.braid, checkpoint)
        if seen.message() != checkpoint.message() or seen.signature != checkpoint.signature:
            raise _Stop(Fault(checkpoint.seq, f"two different braids are numbered "
                              f"{checkpoint.braid}", checkpoint.node))
    return braids


def _pins(checkpoints: Sequence[Checkpoint], braids: Mapping[int, Checkpoint]
          ) -> dict[tuple[int, int], list[tuple[str, str]]]:
    """(node, seq) -> [(chain_hash, what names it)] from checkpoints and every braid head."""
    pins: dict[tuple[int, int], list[tuple[str, str]]] = {}
    for checkpoint in checkpoints:
        if checkpoint.braid is None:
            pins.setdefault((checkpoint.node, checkpoint.seq), []).append(
                (checkpoint.chain_hash, "signed checkpoint"))
    for number, braid in braids.items():
        for node, seq, chain_hash in braid.heads:
            pins.setdefault((node, seq), []).append((chain_hash, f"braid {number}"))
    return pins


def _check_braid_order(braids: Mapping[int, Checkpoint],
                       registry: Mapping[int, int] | None) -> None:
    """Braids 1..n, each following the one before, no node dropped or moved back."""
    before: Checkpoint | None = None
    for number in range(1, max(braids, default=0) + 1):
        braid = braids.get(number)
        if braid is None:
            raise _Stop(Fault(0, f"braid {number} is missing: braids were removed"))
        expected = GENESIS if before is None else before.braid_hash()
        if braid.previous != expected:
            raise _Stop(Fault(0, f"braid {number} does not follow braid {number - 1}: "
                              "a braid was removed, replaced or reordered"))
        named = {node: seq for node, seq, _hash in braid.heads}
        if before is not None:
            for node, seq, _hash in before.heads:
                if node not in named:
                    raise _Stop(Fault(seq, f"node {node} is missing from braid {number} "
                                      f"(braid {number - 1} names it)", node))
                if named[node] < seq:
                    raise _Stop(Fault(named[node], f"braid {number} names an earlier record "
                                      f"of node {node} than braid {number - 1}", node))
        for node, first_braid in (registry or {}).items():
            if first_braid <= number and node not in named:
                raise _Stop(Fault(0, f"node {node} is missing from braid {number} (it "
                                  "registered before that braid)", node))
        before = braid


def verify_chain(records: Iterable[dict[str, Any]], checkpoints: Sequence[Checkpoint],
                 public_pem: str, *, head: ChainHead | None = None,
                 heads: Mapping[int, ChainHead] | None = None,
                 registry: Mapping[int, int] | None = None,
                 partial: bool = False) -> VerifyReport:
    """Check ``records`` (each chain in stored order; a record without ``node`` is node
    1's) against their links, ``checkpoints`` (stored and held outside) and the heads.

    ``head`` is node 1's head, ``heads`` every node's; ``registry`` maps each
    registered node to the first braid that must name it. ``partial``: the records
    are some nodes' only (a file sink's file), so a node with no record here is not
    held to what braids say of it.
    """
    all_heads = dict(heads or {})
    if head is not None:
        all_heads.setdefault(LEGACY_NODE, head)
    chains: dict[int, _Chain] = {}
    fault: Fault | None = None
    braids: dict[int, Checkpoint] = {}
    try:
        _check_signatures(checkpoints, public_pem)
        braids = _braids(checkpoints)
        pins = _pins(checkpoints, braids)
        chain: _Chain | None = None
        for row in records:
            node = row.get("node", LEGACY_NODE)
            if chain is None or chain.node != node:
                chain = chains.get(node)
                if chain is None:
                    chain = chains[node] = _Chain(node)
            _check_record(chain, row, pins)
        named = {node for node, _seq in pins} | set(all_heads) | set(registry or {})
        for node in sorted(named - set(chains)):
            if not partial:
                chains[node] = _Chain(node)
        for node in sorted(chains):
            _check_end(chains[node], pins, all_heads.get(node))
        _check_braid_order(braids, registry)
    except _Stop as stop:
        fault = stop.fault
    ordered = tuple(ChainReport(c.node, c.count, ChainHead(c.expected - 1, c.previous),
                                c.last_good) for _n, c in sorted(chains.items()))
    first = next((c for c in ordered if c.node == LEGACY_NODE), ordered[0] if ordered else None)
    return VerifyReport(ok=fault is None, records=sum(c.records for c in ordered),
                        head=first.head if first else ChainHead(0, GENESIS),
                        checkpoints=len(checkpoints),
                        last_checkpoint=first.last_checkpoint if first else None,
                        first_bad=fault, chains=ordered, braids=len(braids))


def _check_record(chain: _Chain, row: dict[str, Any],
                  pins: Mapping[tuple[int, int], list[tuple[str, str]]]) -> None:
    seq = row.get("seq")
    record_id = row["id"] if seq is None else seq
    expected, node = chain.expected, chain.node
    if record_id != expected:
        if record_id > expected:
            raise _Stop(Fault(expected, f"record {expected} is missing: the log jumps "
                              f"from {expected - 1} to {record_id}", node))
        raise _Stop(Fault(expected, f"where record {expected} should be, record "
                          f"{record_id} appears (repeated, inserted or out of order)", node))
    computed = link(chain.previous, row)
    if computed != row["chain_hash"]:
        raise _Stop(Fault(record_id, f"record {record_id} does not match its link: it "
                          "was changed, inserted or moved", node))
    pinned_here = pins.get((node, record_id), ())
    for pinned, what in pinned_here:
        if pinned != computed:  # (good only once every pin at this place agrees)
            first = (chain.last_good or 0) + 1
            raise _Stop(Fault(first, f"the chain does not reach the {what} at record "
                              f"{record_id}: records {first}-{record_id} were altered "
                              "and relinked", node))
    if pinned_here:
        chain.last_good = record_id
    if seq is not None:  # a stored row: ids are given in append order within a node
        listed = row["id"]
        if listed <= chain.last_id:
            raise _Stop(Fault(record_id, f"record {record_id} is listed out of order: its id "
                              f"{listed} is not above the previous record's", node))
        chain.last_id = listed
    chain.previous, chain.expected, chain.count = computed, expected + 1, chain.count + 1


def _check_end(chain: _Chain, pins: Mapping[tuple[int, int], list[tuple[str, str]]],
               head: ChainHead | None) -> None:
    """Where the chain ends: no pin beyond it, and its head (if known) on its last link."""
    node, last, previous = chain.node, chain.expected - 1, chain.previous
    for pinned, what in pins.get((node, 0), ()):
        if pinned != genesis(node):
            raise _Stop(Fault(1, f"the {what} names another start of node {node}'s chain",
                              node))
    beyond = [seq for (pin_node, seq) in pins if pin_node == node and seq > last]
    if beyond:
        raise _Stop(Fault(last + 1, f"the log ends at record {last} but a signed checkpoint "
                          f"covers record {max(beyond)}: the tail was cut", node))
    if head is not None and (head.seq, head.chain_hash) != (last, previous):
        if head.seq > last:
            raise _Stop(Fault(last + 1, f"the chain head names record {head.seq} but the "
                              f"log ends at record {last}: the tail was cut", node))
        raise _Stop(Fault(min(head.seq + 1, last), "the chain head does not match the last "
                          "record: records were added or changed outside the service", node))
