"""The audit hash chain: each record's link commits to every record before it.

``link(n) = SHA-256("keyquorum audit v1\\n" ‖ link(n-1) ‖ canonical(record n))``
with ``link(0)`` all zero bytes. Records are numbered 1, 2, 3, ... with no gaps
(``id`` is the sequence number), so changing, deleting, inserting or reordering
any record breaks every link from that record on. A *signed checkpoint* (see
``checkpoints.py``) pins a link under the audit signing key, so an attacker who
can write the database but does not hold the key cannot recompute the chain
after an edit without the checkpoint noticing.

Appending takes the chain head row first (an UPDATE), which serializes
appenders on every database: the SQLite write lock, a row lock on PostgreSQL.
Both writers use it: the group-commit writer for request records and the
lifecycle transactions for their in-transaction records.

The canonical form is a compact JSON array in a fixed field order (UTF-8, no
spaces); ``detail`` and ``context`` are included as the exact strings stored.
``docs/FORMAT.md`` specifies it for verifiers in other languages.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from keyquorum.storage.prepared import Prepared
from keyquorum.storage.schema import audit_head, audit_records

GENESIS = "0" * 64
_DOMAIN = b"keyquorum audit v1\n"
HEAD_ROW = 1

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
    return orjson.dumps([row[name] for name in CHAIN_FIELDS])


def link(previous: str, row: dict[str, Any]) -> str:
    """The chain hash (hex) of ``row`` following the link ``previous`` (hex)."""
    return hashlib.sha256(_DOMAIN + bytes.fromhex(previous) + canonical(row)).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The newest link: record ``seq`` has chain hash ``chain_hash`` (seq 0: empty log)."""

    seq: int
    chain_hash: str


# Takes the write lock and reads the head in one statement (RETURNING: SQLite 3.35+,
# PostgreSQL). The no-op UPDATE locks before the head is read, so no other appender
# can read the same head and fork the chain.
_LOCK_HEAD = (update(audit_head).where(audit_head.c.id == bindparam("head_id"))
              .values(seq=audit_head.c.seq)
              .returning(audit_head.c.seq, audit_head.c.chain_hash))
_MOVE_HEAD = (update(audit_head).where(audit_head.c.id == bindparam("head_id"))
              .values(seq=bindparam("new_seq"), chain_hash=bindparam("new_hash")))


def lock_head(conn: Connection) -> ChainHead:
    """The head, with every other appender held off until ``conn``'s transaction ends."""
    row = conn.execute(_LOCK_HEAD, {"head_id": HEAD_ROW}).one()
    return ChainHead(int(row.seq), str(row.chain_hash))


def read_head(conn: Connection) -> ChainHead | None:
    row = conn.execute(select(audit_head.c.seq, audit_head.c.chain_hash)
                       .where(audit_head.c.id == HEAD_ROW)).one_or_none()
    return None if row is None else ChainHead(int(row.seq), str(row.chain_hash))


class AuditChain:
    """Appends rows to ``audit_records`` as links of the chain, inside a caller's transaction."""

    def __init__(self, engine: Engine) -> None:
        # Run on the hot path for every group of records: compiled once, on the DBAPI cursor.
        self._insert = Prepared(engine.dialect, audit_records.insert(),
                                [c.name for c in audit_records.columns])
        self._lock = Prepared(engine.dialect, _LOCK_HEAD)  # what lock_head runs, precompiled
        self._move = Prepared(engine.dialect, _MOVE_HEAD)

    def append(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> ChainHead:
        """Number and link ``rows`` (in place: ``id`` and ``chain_hash`` are set), store them.

        Must run inside ``conn``'s transaction; the rows land with it or not at all.
        """
        # The DBAPI cursor of the same connection (same transaction): SQLAlchemy's
        # result machinery costs more CPU, under the GIL, than these statements.
        cursor = conn.connection.cursor()
        try:
            cursor.execute(self._lock.sql, self._lock.params({"head_id": HEAD_ROW}))
            locked = cursor.fetchone()
            if locked is None:
                raise RuntimeError("the audit chain head is missing")
            seq, previous = int(locked[0]), str(locked[1])
            for row in rows:
                seq += 1
                row["id"] = seq
                previous = row["chain_hash"] = link(previous, row)
            cursor.executemany(self._insert.sql, [self._insert.params(row) for row in rows])
            cursor.execute(self._move.sql, self._move.params(
                {"head_id": HEAD_ROW, "new_seq": seq, "new_hash": previous}))
        finally:
            cursor.close()
        return ChainHead(seq, previous)


def ensure_head(engine: Engine) -> ChainHead:
    """Create the head on first start, linking any records written before the chain existed.

    Stores migrated from schema 0001 hold records without links; they are linked
    once, in id order, so the whole history is covered. Idempotent and safe when
    several processes start at once (the head row's key admits one creator).
    """
    with engine.connect() as conn:
        head = read_head(conn)
    if head is not None:
        return head
    try:
        with engine.begin() as conn:
            rows = conn.execute(select(audit_records).order_by(audit_records.c.id)) \
                .mappings().all()
            previous, seq = GENESIS, 0
            for stored in rows:
                seq += 1
                row = dict(stored)
                if row["id"] != seq:
                    raise RuntimeError("audit records have gaps in their ids, so they cannot "
                                       "be linked as stored")
                previous = link(previous, row)
                conn.execute(update(audit_records).where(audit_records.c.id == seq)
                             .values(chain_hash=previous))
            conn.execute(insert(audit_head).values(id=HEAD_ROW, seq=seq, chain_hash=previous))
            return ChainHead(seq, previous)
    except IntegrityError:  # another process created it first: theirs stands
        with engine.connect() as conn:
            head = read_head(conn)
        if head is None:
            raise
        return head
