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
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from keyquorum.storage import audit_repo

GENESIS = "0" * 64
_DOMAIN = b"keyquorum audit v1\n"

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


def lock_head(conn: Connection) -> ChainHead:
    """The head, with every other appender held off until ``conn``'s transaction ends."""
    return ChainHead(*audit_repo.lock_head(conn))


def read_head(conn: Connection) -> ChainHead | None:
    head = audit_repo.read_head(conn)
    return None if head is None else ChainHead(*head)


class AuditChain:
    """Appends rows to ``audit_records`` as links of the chain, inside a caller's transaction."""

    def __init__(self, engine: Engine) -> None:
        self._appender = audit_repo.RecordAppender(engine.dialect)

    def append(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> ChainHead:
        """Number and link ``rows`` (in place: ``id`` and ``chain_hash`` are set), store them.

        Must run inside ``conn``'s transaction; the rows land with it or not at all.
        """
        return ChainHead(*self._appender.append(conn, rows, link))


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
            return ChainHead(*audit_repo.link_stored_records(conn, GENESIS, link))
    except IntegrityError:  # another process created it first: theirs stands
        with engine.connect() as conn:
            head = read_head(conn)
        if head is None:
            raise
        return head
