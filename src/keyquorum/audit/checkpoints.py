"""Signed checkpoints and braids: "record ``seq`` of this chain has link ``chain_hash``", signed.

The chain alone shows that records were changed only to someone who recomputes
it; an attacker with write access to the database could edit a record and
relink everything after it. A checkpoint signed with the audit key (which
never leaves the barrier) pins a link: relinking breaks the signature match, and
a tail cut behind a checkpoint held outside the database (in an export, a file
sink, or an auditor's notes) is visible because the checkpoint names a record
that is gone.

With a chain per node, what is signed is a **braid**: one statement naming every
registered node's head ``(node, seq, chain_hash)``, numbered, and chained to the
braid before it by that braid's hash. It is stored as one ``Checkpoint`` row per
node (all with the braid's signature), so each row pins its node's chain like a
checkpoint did, and together they show a chain cut, a node dropped, or a braid
removed or replaced (``verify.py``). The service makes one when the log has grown:
at an interval (the scheduler's job, once across the cluster under the job lock),
at start (when already unsealed), at unseal, at a clean shutdown and on seal.
Rows without a braid number are the single-chain checkpoints of node 1 made
before there were braids; they are still checked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from keyquorum.audit.chain import GENESIS, LEGACY_NODE, read_heads
from keyquorum.audit.keys import SIGNING_ALG, AuditKeys
from keyquorum.crypto.signing import verify_with_public_pem
from keyquorum.storage import audit_repo

_DOMAIN = b"keyquorum audit checkpoint v1\n"
_BRAID_DOMAIN = b"keyquorum audit braid v1\n"
MAX_BRAID_NODES = 4096  # a braid held outside names at most this many nodes

BraidHead = tuple[int, int, str]
"""One node's entry in a braid: (node, seq, chain_hash)."""


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed pin of one node's chain: alone (``braid`` None, node 1) or a braid's entry."""

    seq: int
    chain_hash: str
    time: float
    key_id: str
    signature: str  # base64
    node: int = LEGACY_NODE
    braid: int | None = None
    previous: str | None = None  # the hash of the braid before (GENESIS for braid 1)
    heads: tuple[BraidHead, ...] = ()  # every entry of the braid, by node

    def message(self) -> bytes:
        """The signed bytes: a domain tag and the fields as a compact JSON array."""
        if self.braid is None:
            return _DOMAIN + json.dumps([self.seq, self.chain_hash, self.time, self.key_id],
                                        separators=(",", ":")).encode("ascii")
        return _BRAID_DOMAIN + json.dumps(
            [self.braid, self.previous, self.time, self.key_id,
             [list(head) for head in self.heads]], separators=(",", ":")).encode("ascii")

    def braid_hash(self) -> str:
        """What the next braid names as ``previous``: SHA-256 of this braid's signed bytes."""
        return hashlib.sha256(self.message()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"seq": self.seq, "chain_hash": self.chain_hash,
                                "time": self.time, "key_id": self.key_id,
                                "signature": self.signature}
        if self.node != LEGACY_NODE:
            body["node"] = self.node
        if self.braid is not None:
            body.update(braid=self.braid, previous=self.previous,
                        heads=[list(head) for head in self.heads])
        return body

    @classmethod
    def from_json(cls, body: object) -> Checkpoint:
        """Parse a checkpoint given by a caller or read from a file; ``ValueError`` if malformed."""
        shape = ("a checkpoint is an object with seq, chain_hash, time, key_id, signature "
                 "(and node, braid, previous, heads for a braid's entry)")
        if not isinstance(body, dict):
            raise ValueError(shape)
        seq, chain_hash, time = body.get("seq"), body.get("chain_hash"), body.get("time")
        key_id, signature = body.get("key_id"), body.get("signature")
        node, braid = body.get("node", LEGACY_NODE), body.get("braid")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0 \
                or not _is_int(node) or node < 1 \
                or not isinstance(chain_hash, str) or len(chain_hash) != 64 \
                or isinstance(time, bool) or not isinstance(time, int | float) \
                or not isinstance(key_id, str) or not isinstance(signature, str):
            raise ValueError(shape)
        if braid is None:
            if node != LEGACY_NODE:
                raise ValueError("a checkpoint of another node than 1 is a braid's entry")
            return cls(seq, chain_hash, float(time), key_id, signature)
        previous, heads = body.get("previous"), body.get("heads")
        if not _is_int(braid) or braid < 1 or not isinstance(previous, str) \
                or len(previous) != 64 or not isinstance(heads, list) \
                or len(heads) > MAX_BRAID_NODES:
            raise ValueError(shape)
        parsed: list[BraidHead] = []
        for head in heads:
            if not isinstance(head, list) or len(head) != 3 or not _is_int(head[0]) \
                    or not _is_int(head[1]) or not isinstance(head[2], str):
                raise ValueError("a braid's heads are [node, seq, chain_hash] triples")
            parsed.append((head[0], head[1], head[2]))
        if (node, seq, chain_hash) not in parsed:
            raise ValueError("a braid's entry must be one of its heads")
        return cls(seq, chain_hash, float(time), key_id, signature, node, braid, previous,
                   tuple(parsed))

    @classmethod
    def from_line(cls, item: dict[str, Any]) -> Checkpoint:
        """A checkpoint from an export line (``{"type": "checkpoint", ...}``) or its bare form."""
        if item.get("type", "checkpoint") != "checkpoint":
            raise ValueError("not a checkpoint line")
        return cls.from_json({k: v for k, v in item.items() if k != "type"})

    def signature_valid(self, public_pem: str) -> bool:
        try:
            signature = base64.b64decode(self.signature, validate=True)
        except (binascii.Error, ValueError):
            return False
        return verify_with_public_pem(SIGNING_ALG, public_pem, signature,
                                      message=self.message())


def make_checkpoint(conn: Connection, keys: AuditKeys, now: float, *,
                    only_if_grown: bool = False, node: int = LEGACY_NODE
                    ) -> Checkpoint | None:
    """Sign a braid of every node's head and store it, inside ``conn``'s transaction;
    the entry of ``node`` is returned (None: nothing to sign).

    Braids are made one at a time (``lock_braids``: the braid before is the newest
    there is, and a node registering meanwhile waits, so the braid names it or it
    knows to expect the next one). The heads are read, not locked: a head is
    committed with its records, so every head read names a link that exists, and no
    append waits for a braid. ``only_if_grown`` skips it when no chain moved since
    it was last signed (the interval job).
    """
    audit_repo.lock_braids(conn)
    heads = read_heads(conn)
    for registered in audit_repo.node_registry(conn):
        if registered not in heads:
            raise RuntimeError(f"the chain of audit node {registered} is gone")
    if all(head.seq == 0 for head in heads.values()):
        return None
    if only_if_grown:
        signed = audit_repo.signed_seqs(conn)
        if all(head.seq <= signed.get(n, 0) for n, head in heads.items()):
            return None
    number = audit_repo.newest_braid(conn)
    previous = GENESIS
    if number:
        before = stored_braid(conn, number)
        previous = before.braid_hash() if before is not None else GENESIS
    entries = tuple((n, head.seq, head.chain_hash) for n, head in sorted(heads.items()))
    unsigned = Checkpoint(0, GENESIS, now, keys.key_id, "", braid=number + 1,
                          previous=previous, heads=entries)
    signature = base64.b64encode(keys.sign(unsigned.message())).decode("ascii")
    mine: Checkpoint | None = None
    for entry_node, seq, chain_hash in entries:
        row = Checkpoint(seq, chain_hash, now, keys.key_id, signature, entry_node,
                         number + 1, previous, entries)
        audit_repo.insert_checkpoint(conn, {
            "seq": seq, "chain_hash": chain_hash, "time": now, "key_id": keys.key_id,
            "signature": signature, "node": entry_node, "braid": number + 1,
            "previous": previous})
        if entry_node == node or mine is None:
            mine = row
    return mine


def stored_braid(conn: Connection, number: int) -> Checkpoint | None:
    """One stored braid (its first entry, which carries all its heads), or None."""
    rows = audit_repo.braid_rows(conn, number)
    made = _with_heads(rows)
    return made[0] if made else None


def _with_heads(rows: list[Any]) -> list[Checkpoint]:
    """Checkpoints from stored rows, each braid entry carrying its braid's heads."""
    heads: dict[int, list[BraidHead]] = {}
    for r in rows:
        if r.braid is not None:
            heads.setdefault(int(r.braid), []).append((int(r.node), int(r.seq), r.chain_hash))
    return [Checkpoint(int(r.seq), r.chain_hash, r.time, r.key_id, r.signature, int(r.node),
                       None if r.braid is None else int(r.braid), r.previous,
                       () if r.braid is None else tuple(sorted(heads[int(r.braid)])))
            for r in rows]


def stored_checkpoints(conn: Connection) -> list[Checkpoint]:
    """Every stored checkpoint and braid entry, oldest first."""
    return _with_heads(audit_repo.checkpoint_rows(conn))

