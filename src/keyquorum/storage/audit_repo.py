"""The audit tables' SQL: the chain head, the records, the signed checkpoints.

What a link *is* (the hash, the canonical form) is ``audit.chain``'s business;
this module only stores and reads. Appending is the hot path of every audited
request, so ``RecordAppender`` runs its three statements precompiled on the
DBAPI cursor of the caller's connection (the caller's transaction): take the
head row (an UPDATE, which serializes appenders on every database: the SQLite
write lock, a row lock on PostgreSQL), insert the linked rows, move the head.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update
from sqlalchemy.engine import Dialect

from keyquorum.storage.prepared import Prepared
from keyquorum.storage.schema import audit_checkpoints, audit_head, audit_records

HEAD_ROW = 1
"""The one row of ``audit_head``."""

Head = tuple[int, str]
"""(sequence number of the newest record, its chain hash)."""

# Takes the write lock and reads the head in one statement (RETURNING: SQLite 3.35+,
# PostgreSQL). The no-op UPDATE locks before the head is read, so no other appender
# can read the same head and fork the chain.
_LOCK_HEAD = (update(audit_head).where(audit_head.c.id == bindparam("head_id"))
              .values(seq=audit_head.c.seq)
              .returning(audit_head.c.seq, audit_head.c.chain_hash))
_MOVE_HEAD = (update(audit_head).where(audit_head.c.id == bindparam("head_id"))
              .values(seq=bindparam("new_seq"), chain_hash=bindparam("new_hash")))


def lock_head(conn: Connection) -> Head:
    """The head, with every other appender held off until ``conn``'s transaction ends."""
    row = conn.execute(_LOCK_HEAD, {"head_id": HEAD_ROW}).one()
    return int(row.seq), str(row.chain_hash)


def read_head(conn: Connection) -> Head | None:
    row = conn.execute(select(audit_head.c.seq, audit_head.c.chain_hash)
                       .where(audit_head.c.id == HEAD_ROW)).one_or_none()
    return None if row is None else (int(row.seq), str(row.chain_hash))


class RecordAppender:
    """Numbers, links and stores record rows inside a caller's transaction."""

    def __init__(self, dialect: Dialect) -> None:
        # Run for every group of records: compiled once, executed on the DBAPI cursor.
        self._insert = Prepared(dialect, audit_records.insert(),
                                [c.name for c in audit_records.columns])
        self._lock = Prepared(dialect, _LOCK_HEAD)
        self._move = Prepared(dialect, _MOVE_HEAD)

    def append(self, conn: Connection, rows: Sequence[dict[str, Any]],
               link: Callable[[str, dict[str, Any]], str]) -> Head:
        """Give ``rows`` the next ids and their links (in place: ``id`` and ``chain_hash``),
        store them and move the head. They land with ``conn``'s transaction or not at all."""
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
        return seq, previous


def link_stored_records(conn: Connection, genesis: str,
                        link: Callable[[str, dict[str, Any]], str]) -> Head:
    """Link every stored record in id order and create the head (first start of a store
    whose records predate the chain). Raises ``IntegrityError`` if the head exists."""
    rows = conn.execute(select(audit_records).order_by(audit_records.c.id)).mappings().all()
    previous, seq = genesis, 0
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
    return seq, previous


def records_between(conn: Connection, after: int, upto: int, limit: int
                    ) -> list[dict[str, Any]]:
    """Records with ``after < id <= upto``, in id order, at most ``limit``."""
    rows = conn.execute(select(audit_records)
                        .where(audit_records.c.id > after, audit_records.c.id <= upto)
                        .order_by(audit_records.c.id).limit(limit)).mappings().all()
    return [dict(row) for row in rows]


def newest_record_id(conn: Connection) -> int:
    return int(conn.execute(select(func.max(audit_records.c.id))).scalar() or 0)


def query_records(engine: Engine, *, equal: dict[str, str | None], context_tag: str | None,
                  since: float | None, until: float | None, before_id: int | None,
                  limit: int) -> list[Any]:
    """Records newest first matching every filter given (``None``: no filter), at most
    ``limit``. ``equal`` maps a column (key, identity, operation, outcome) to its value;
    ``context_tag`` is an HMAC tag that must appear in the stored context."""
    table = audit_records
    statement = select(table).order_by(table.c.id.desc()).limit(limit)
    for column, value in equal.items():
        if value is not None:
            statement = statement.where(table.c[column] == value)
    if context_tag is not None:
        statement = statement.where(table.c.context.like(f'%"{context_tag}"%'))
    if since is not None:
        statement = statement.where(table.c.time >= since)
    if until is not None:
        statement = statement.where(table.c.time < until)
    if before_id is not None:
        statement = statement.where(table.c.id < before_id)
    with engine.connect() as connection:
        return list(connection.execute(statement).all())


def last_checkpoint_seq(conn: Connection) -> int | None:
    last = conn.execute(select(audit_checkpoints.c.seq)
                        .order_by(audit_checkpoints.c.id.desc()).limit(1)).scalar()
    return None if last is None else int(last)


def insert_checkpoint(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(audit_checkpoints).values(**values))


def checkpoint_rows(conn: Connection) -> list[Any]:
    """Every stored checkpoint, oldest first (``seq``, ``chain_hash``, ``time``,
    ``key_id``, ``signature``)."""
    return list(conn.execute(select(audit_checkpoints).order_by(audit_checkpoints.c.id)).all())
