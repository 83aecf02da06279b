"""The audit tables' SQL: the node registry, each node's chain head, the records, the
signed checkpoints and braids.

What a link *is* (the hash, the canonical form, a node's genesis) is
``audit.chain``'s business; this module only stores and reads. Appending is the hot
path of every audited request, so ``RecordAppender`` runs its three statements
precompiled on the DBAPI cursor of the caller's connection (the caller's
transaction): take the node's head row (an UPDATE, which serializes that node's
appenders: the SQLite write lock, a row lock on PostgreSQL that no other node ever
takes), insert the linked rows, move the head. Record ids come from the database
(SQLite's rowid, PostgreSQL's sequence, which takes no lock held to commit).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update
from sqlalchemy.engine import Dialect

from keyquorum.storage.prepared import Prepared
from keyquorum.storage.schema import audit_checkpoints, audit_head, audit_nodes, audit_records

LEGACY_NODE = 1
"""Node 1: SQLite's one node, and the chain a store had before chains per node."""
LEGACY_NODE_NAME = "default"  # its registry name (as migration 0007 gives it)
HEAD_ROW = LEGACY_NODE  # kept for callers that knew the one row of ``audit_head``

BRAID_LOCK = 0x6B71_6272_6169  # "kqbrai": braids and node registrations, on PostgreSQL

Head = tuple[int, str]
"""(sequence number of the newest record, its chain hash)."""

# Takes the node's head row and reads it in one statement (RETURNING: SQLite 3.35+,
# PostgreSQL). The no-op UPDATE locks before the head is read, so no other appender
# of the node can read the same head and fork its chain.
_LOCK_HEAD = (update(audit_head).where(audit_head.c.id == bindparam("head_id"))
              .values(seq=audit_head.c.seq)
              .returning(audit_head.c.seq, audit_head.c.chain_hash))
_MOVE_HEAD = (update(audit_head).where(audit_head.c.id == bindparam("head_id"))
              .values(seq=bindparam("new_seq"), chain_hash=bindparam("new_hash")))
_RECORD_COLUMNS = [c.name for c in audit_records.columns if c.name != "id"]


def lock_head(conn: Connection, node: int = LEGACY_NODE) -> Head:
    """The node's head, with its other appenders held off until ``conn``'s transaction ends."""
    row = conn.execute(_LOCK_HEAD, {"head_id": node}).one()
    return int(row.seq), str(row.chain_hash)


def read_head(conn: Connection, node: int = LEGACY_NODE) -> Head | None:
    row = conn.execute(select(audit_head.c.seq, audit_head.c.chain_hash)
                       .where(audit_head.c.id == node)).one_or_none()
    return None if row is None else (int(row.seq), str(row.chain_hash))


def read_heads(conn: Connection) -> dict[int, Head]:
    """Every node's head, by node id."""
    rows = conn.execute(select(audit_head.c.id, audit_head.c.seq, audit_head.c.chain_hash))
    return {int(r.id): (int(r.seq), str(r.chain_hash)) for r in rows}


def lock_braids(conn: Connection) -> None:
    """Serialize braids and node registrations until ``conn``'s transaction ends.

    PostgreSQL: a transaction advisory lock (never taken by an append). SQLite: the
    write lock, taken now rather than upgraded to later (an upgrade can fail at once).
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({BRAID_LOCK})")
    else:
        conn.execute(update(audit_head).where(audit_head.c.id == -1).values(seq=0))


def find_node(conn: Connection, name: str) -> int | None:
    found = conn.execute(select(audit_nodes.c.id).where(audit_nodes.c.name == name)).scalar()
    return None if found is None else int(found)


def register_node(conn: Connection, name: str, now: float, genesis: Callable[[int], str],
                  node: int | None = None) -> int:
    """Add a node to the registry with an empty chain (head at ``genesis(node)``).

    ``node`` None: the next free id. Under ``lock_braids``, so the newest braid read
    here is the newest there is: every braid after it must name the node. Raises
    ``IntegrityError`` if the name or the id is taken (another process registered it).
    """
    lock_braids(conn)
    if node is None:
        node = int(conn.execute(select(func.max(audit_nodes.c.id))).scalar() or 0) + 1
    conn.execute(insert(audit_nodes).values(id=node, name=name, registered_at=now,
                                            first_braid=newest_braid(conn) + 1))
    if read_head(conn, node) is None:
        conn.execute(insert(audit_head).values(id=node, seq=0, chain_hash=genesis(node)))
    return node


def node_registry(conn: Connection) -> dict[int, tuple[str, int]]:
    """Every registered node: id -> (name, first braid that must name it)."""
    rows = conn.execute(select(audit_nodes.c.id, audit_nodes.c.name, audit_nodes.c.first_braid))
    return {int(r.id): (str(r.name), int(r.first_braid)) for r in rows}


class RecordAppender:
    """Numbers, links and stores record rows of one node's chain inside a caller's transaction."""

    def __init__(self, dialect: Dialect, node: int = LEGACY_NODE) -> None:
        # Run for every group of records: compiled once, executed on the DBAPI cursor.
        self._insert = Prepared(dialect, audit_records.insert(), _RECORD_COLUMNS)
        self._lock = Prepared(dialect, _LOCK_HEAD)
        self._move = Prepared(dialect, _MOVE_HEAD)
        self.node = node

    def append(self, conn: Connection, rows: Sequence[dict[str, Any]],
               link: Callable[[str, dict[str, Any]], str]) -> Head:
        """Give ``rows`` the node's next places and their links (in place: ``node``,
        ``seq`` and ``chain_hash``), store them and move the head. They land with
        ``conn``'s transaction or not at all."""
        # The DBAPI cursor of the same connection (same transaction): SQLAlchemy's
        # result machinery costs more CPU, under the GIL, than these statements.
        node = self.node
        cursor = conn.connection.cursor()
        try:
            cursor.execute(self._lock.sql, self._lock.params({"head_id": node}))
            locked = cursor.fetchone()
            if locked is None:
                raise RuntimeError(f"the audit chain head of node {node} is missing")
            seq, previous = int(locked[0]), str(locked[1])
            for row in rows:
                seq += 1
                row["node"] = node
                row["seq"] = seq
                previous = row["chain_hash"] = link(previous, row)
            cursor.executemany(self._insert.sql, [self._insert.params(row) for row in rows])
            cursor.execute(self._move.sql, self._move.params(
                {"head_id": node, "new_seq": seq, "new_hash": previous}))
        finally:
            cursor.close()
        return seq, previous


def link_stored_records(conn: Connection, genesis: str,
                        link: Callable[[str, dict[str, Any]], str]) -> Head:
    """Link every stored record of node 1 in place order and create its head (first start
    of a store whose records predate the chain). Raises ``IntegrityError`` if the head
    exists."""
    rows = conn.execute(select(audit_records).where(audit_records.c.node == LEGACY_NODE)
                        .order_by(audit_records.c.seq)).mappings().all()
    previous, seq = genesis, 0
    for stored in rows:
        seq += 1
        row = dict(stored)
        if row["seq"] != seq:
            raise RuntimeError("audit records have gaps in their ids, so they cannot "
                               "be linked as stored")
        previous = link(previous, row)
        conn.execute(update(audit_records).where(audit_records.c.node == LEGACY_NODE,
                                                 audit_records.c.seq == seq)
                     .values(chain_hash=previous))
    conn.execute(insert(audit_head).values(id=LEGACY_NODE, seq=seq, chain_hash=previous))
    return seq, previous


def records_between(conn: Connection, after: int, upto: int, limit: int,
                    node: int = LEGACY_NODE) -> list[dict[str, Any]]:
    """The node's records with ``after < seq <= upto``, in chain order, at most ``limit``."""
    rows = conn.execute(select(audit_records)
                        .where(audit_records.c.node == node, audit_records.c.seq > after,
                               audit_records.c.seq <= upto)
                        .order_by(audit_records.c.seq).limit(limit)).mappings().all()
    return [dict(row) for row in rows]


def newest_seqs(conn: Connection) -> dict[int, int]:
    """The highest place stored in each node's chain (a record beyond its head shows)."""
    rows = conn.execute(select(audit_records.c.node, func.max(audit_records.c.seq))
                        .group_by(audit_records.c.node)).all()
    return {int(node): int(seq) for node, seq in rows}


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


def last_checkpoint_seq(conn: Connection, node: int = LEGACY_NODE) -> int | None:
    """The place the node's newest checkpoint (or braid entry) names, if any."""
    last = conn.execute(select(audit_checkpoints.c.seq).where(audit_checkpoints.c.node == node)
                        .order_by(audit_checkpoints.c.id.desc()).limit(1)).scalar()
    return None if last is None else int(last)


def signed_seqs(conn: Connection) -> dict[int, int]:
    """The highest place any checkpoint names, per node."""
    rows = conn.execute(select(audit_checkpoints.c.node, func.max(audit_checkpoints.c.seq))
                        .group_by(audit_checkpoints.c.node)).all()
    return {int(node): int(seq) for node, seq in rows}


def newest_braid(conn: Connection) -> int:
    """The number of the newest braid, 0 before the first."""
    return int(conn.execute(select(func.max(audit_checkpoints.c.braid))).scalar() or 0)


def braid_rows(conn: Connection, braid: int) -> list[Any]:
    """The rows of one braid (one per node it names), by node."""
    return list(conn.execute(select(audit_checkpoints).where(audit_checkpoints.c.braid == braid)
                             .order_by(audit_checkpoints.c.node)).all())


def insert_checkpoint(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(audit_checkpoints).values(**values))


def checkpoint_rows(conn: Connection) -> list[Any]:
    """Every stored checkpoint row, oldest first (``seq``, ``chain_hash``, ``time``,
    ``key_id``, ``signature``, ``node``, ``braid``, ``previous``)."""
    return list(conn.execute(select(audit_checkpoints).order_by(audit_checkpoints.c.id)).all())
