"""Moving a whole store from one database to another, and proving the copy is exact.

For ``keyquorum operator migrate-storage`` (``backup/migrate_storage.py`` runs the
steps; the SQL is here). Every table of ``schema.metadata`` is copied as stored:
ciphertext stays ciphertext, nothing is decrypted or re-encoded, so the store needs
no unsealing to move.

The comparison reads both stores in one order and compares row by row, value by
value. The order is the primary key's under *binary* collation on both sides:
SQLite compares text by its bytes, and PostgreSQL's default collation would sort
``"B" < "a"`` the other way; ``COLLATE "C"`` makes PostgreSQL sort by bytes too
(for UTF-8, byte order is code point order on both).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Integer, String, Table, func, inspect, select, text
from sqlalchemy.exc import DBAPIError

from keyquorum.storage.schema import metadata

BATCH = 1000
"""Rows read and inserted per round trip."""

Progress = Callable[[int], None]
"""Told how many more rows were done."""


class TransferError(Exception):
    """The copy could not be made or is not exact; the message says where (never a value)."""


@dataclass(frozen=True, slots=True)
class Mismatch:
    """The first difference found in a table."""

    table: str
    reason: str


def tables() -> list[Table]:
    """Every table of the store, parents before children (foreign keys)."""
    return list(metadata.sorted_tables)


def existing_tables(conn: Connection) -> list[str]:
    """The tables already in the target's default schema (keyquorum's or anyone's)."""
    return sorted(inspect(conn).get_table_names())


def row_counts(conn: Connection) -> dict[str, int]:
    """Table name → rows, for every table of the store."""
    return {table.name: int(conn.execute(select(func.count()).select_from(table)).scalar()
                            or 0) for table in tables()}


def _ordered(conn: Connection, table: Table) -> Iterator[Sequence[Any]]:
    """Every row of ``table`` in primary-key order, text compared by its bytes."""
    binary = conn.dialect.name == "postgresql"
    keys = list(table.primary_key.columns) or list(table.columns)
    order = [column.collate("C") if binary and isinstance(column.type, String) else column
             for column in keys]
    result = conn.execute(select(table).order_by(*order).execution_options(yield_per=BATCH))
    yield from result


def copy_table(source: Connection, target: Connection, table: Table,
               progress: Progress) -> int:
    """Insert every row of ``table`` from ``source`` into ``target``; how many."""
    names = [column.name for column in table.columns]
    copied = 0
    batch: list[dict[str, Any]] = []
    try:
        for row in _ordered(source, table):
            batch.append(dict(zip(names, row, strict=True)))
            if len(batch) >= BATCH:
                target.execute(table.insert(), batch)
                copied += len(batch)
                progress(len(batch))
                batch = []
        if batch:
            target.execute(table.insert(), batch)
            copied += len(batch)
            progress(len(batch))
    except DBAPIError as exc:  # the driver's words name the rule, not the row's values
        reason = str(exc.orig).splitlines()[0] if exc.orig is not None else type(exc).__name__
        raise TransferError(f"table {table.name}: the target refused a row ({reason})"
                            ) from None
    return copied


def reset_sequences(conn: Connection) -> None:
    """Move PostgreSQL's id sequences past the copied ids (rows were inserted with their
    ids, which a sequence does not notice); nothing to do on SQLite."""
    if conn.dialect.name != "postgresql":
        return
    for table in tables():
        column = table.autoincrement_column
        if column is None or not isinstance(column.type, Integer):
            continue
        conn.execute(text(
            f"SELECT setval(pg_get_serial_sequence(:table, :column), "  # noqa: S608 - names from the schema
            f"COALESCE(MAX({column.name}), 1), MAX({column.name}) IS NOT NULL) "
            f"FROM {table.name}"), {"table": table.name, "column": column.name})


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, memoryview | bytearray):
        left = bytes(left)
    if isinstance(right, memoryview | bytearray):
        right = bytes(right)
    return bool(type(left) is type(right) and left == right) or (
        left is None and right is None)


def compare_table(source: Connection, target: Connection, table: Table,
                  progress: Progress) -> Mismatch | None:
    """The first difference between the two stores' rows of ``table``, or None."""
    names = [column.name for column in table.columns]
    keys = [names.index(column.name) for column in table.primary_key.columns]
    theirs = _ordered(target, table)
    done = 0
    for number, ours in enumerate(_ordered(source, table), start=1):
        copy = next(theirs, None)
        if copy is None:
            return Mismatch(table.name, f"the copy ends after {number - 1} rows")
        for index, name in enumerate(names):
            if not _same(ours[index], copy[index]):
                where = ", ".join(f"{names[k]}={ours[k]!r}" for k in keys
                                  if not isinstance(ours[k], bytes))
                return Mismatch(table.name, f"row {number} ({where}) differs in {name}")
        done += 1
        if done == BATCH:
            progress(done)
            done = 0
    progress(done)
    if next(theirs, None) is not None:
        return Mismatch(table.name, "the copy has more rows than the original")
    return None
