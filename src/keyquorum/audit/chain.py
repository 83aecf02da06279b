"""The audit hash chain: each record's link commits to every record before it.

``link(n) = SHA-256("keyquorum audit v1\\n" ‖ link(n-1) ‖ canonical(record n))``
with ``link(0)`` the chain's *genesis*. Each node appends to a chain of its own
(``audit_head`` row and ``audit_records.node``); node 1's genesis is all zero
bytes (the one chain a store had before there were several), node N's is
``SHA-256("keyquorum audit node v1\\n" ‖ N)``, so every chain is bound to its node.
Records of a chain are numbered 1, 2, 3, ... with no gaps (``seq``, written as
``id`` in the canonical form and in exports), so changing, deleting, inserting or
reordering any record breaks every link from that record on. A *signed checkpoint* (see
``checkpoints.py``) pins a link under the audit signing key, so an attacker who
can write the database but does not hold the key cannot recompute the chain
after an edit without the checkpoint noticing.

Appending takes the node's head row first (an UPDATE), which serializes that
node's appenders: the SQLite write lock, a row lock on PostgreSQL that no other
node takes. Both writers of a node use it: the group-commit writer for request
records and the lifecycle transactions for their in-transaction records. The
chains are tied together by *braids* (``braids.py``).

The canonical form is a compact JSON array in a fixed field order (UTF-8, no
spaces); ``detail`` and ``context`` are included as the exact strings stored.
``docs/FORMAT.md`` specifies it for verifiers in other languages.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from keyquorum.storage import audit_repo

GENESIS = "0" * 64
_DOMAIN = b"keyquorum audit v1\n"
_NODE_DOMAIN = b"keyquorum audit node v1\n"
LEGACY_NODE = audit_repo.LEGACY_NODE


def genesis(node: int) -> str:
    """``link(0)`` of a node's chain: zeros for node 1, bound to the node id otherwise."""
    if node == LEGACY_NODE:
        return GENESIS
    return hashlib.sha256(_NODE_DOMAIN + str(node).encode("ascii")).hexdigest()

# The fields of a record in chain order (``id`` first). Never reorder: it is a format.
CHAIN_FIELDS = ("id", "time", "request_id", "identity", "operation", "key", "key_version",
                "outcome", "error_code", "client", "detail", "context")


def canonical(row: dict[str, Any]) -> bytes:
    """The bytes a record's link hashes: its fields as a compact UTF-8 JSON array.

    orjson writes it (a few hundred nanoseconds, against microseconds for ``json``):
    no whitespace, strings with only the escapes JSON requires (non-ASCII as UTF-8),
    integers as digits, ``time`` as the shortest decimal that reads back to the same
    double — the same text as ``json.dumps(..., ensure_ascii=False,
    separators=(",", ":"))`` for every value a record holds.
    """
    seq = row.get("seq")  # a stored row's place; an export line's ``id`` is the same
    # The fields spelled out (CHAIN_FIELDS' order): this runs for every record appended.
    return orjson.dumps((row["id"] if seq is None else seq, row["time"], row["request_id"],
                         row["identity"], row["operation"], row["key"], row["key_version"],
                         row["outcome"], row["error_code"], row["client"], row["detail"],
                         row["context"]))


def link(previous: str, row: dict[str, Any]) -> str:
    """The chain hash (hex) of ``row`` following the link ``previous`` (hex)."""
    return hashlib.sha256(_DOMAIN + bytes.fromhex(previous) + canonical(row)).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The newest link: record ``seq`` has chain hash ``chain_hash`` (seq 0: empty log)."""

    seq: int
    chain_hash: str


def lock_head(conn: Connection, node: int = LEGACY_NODE) -> ChainHead:
    """The node's head, with its other appenders held off until ``conn``'s transaction ends."""
    return ChainHead(*audit_repo.lock_head(conn, node))


def read_head(conn: Connection, node: int = LEGACY_NODE) -> ChainHead | None:
    head = audit_repo.read_head(conn, node)
    return None if head is None else ChainHead(*head)


def read_heads(conn: Connection) -> dict[int, ChainHead]:
    return {node: ChainHead(*head) for node, head in audit_repo.read_heads(conn).items()}


class AuditChain:
    """Appends rows to one node's chain in ``audit_records``, inside a caller's transaction."""

    def __init__(self, engine: Engine, node: int = LEGACY_NODE) -> None:
        self._appender = audit_repo.RecordAppender(engine.dialect, node)
        self.node = node

    def append(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> ChainHead:
        """Number and link ``rows`` (in place: ``node``, ``seq`` and ``chain_hash`` are set),
        store them.

        Must run inside ``conn``'s transaction; the rows land with it or not at all.
        """
        return ChainHead(*self._appender.append(conn, rows, link))


def ensure_node(engine: Engine, name: str | None) -> int:
    """This process's node id, its chain created (and registered) on first start.

    ``name`` None: node 1, the one chain of an SQLite store (see ``audit.nodes``).
    Otherwise the registry row of that name, made with an empty chain if there is
    none yet. Idempotent, and safe when several processes start at once (the
    registry's unique name and the head row's key admit one creator).
    """
    if name is None:
        ensure_head(engine)
        return LEGACY_NODE
    with engine.connect() as conn:
        found = audit_repo.find_node(conn, name)
    if found is not None:
        return found
    try:
        with engine.begin() as conn:
            return audit_repo.register_node(conn, name, time.time(), genesis)
    except IntegrityError:  # another process registered the name first: theirs stands
        with engine.connect() as conn:
            found = audit_repo.find_node(conn, name)
        if found is None:
            raise
        return found


def ensure_head(engine: Engine) -> ChainHead:
    """Create node 1's head and registry row on first start, linking any records written
    before the chain existed.

    Stores migrated from schema 0001 hold records without links; they are linked
    once, in place order, so the whole history is covered. Idempotent and safe when
    several processes start at once (the head row's key admits one creator).
    """
    with engine.connect() as conn:
        head = read_head(conn)
        registered = LEGACY_NODE in audit_repo.node_registry(conn)
    if head is not None and registered:
        return head
    try:
        with engine.begin() as conn:
            if head is None:
                audit_repo.link_stored_records(conn, GENESIS, link)
            if not registered:
                audit_repo.register_node(conn, audit_repo.LEGACY_NODE_NAME, time.time(),
                                         genesis, node=LEGACY_NODE)
    except IntegrityError:  # another process created them first: theirs stand
        pass
    with engine.connect() as conn:
        made = read_head(conn)
        registered = LEGACY_NODE in audit_repo.node_registry(conn)
    if made is None or not registered:
        raise RuntimeError("the audit chain of node 1 could not be created")
    return made
