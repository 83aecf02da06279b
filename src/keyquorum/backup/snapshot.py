"""Reading the whole store in one consistent read, as the backup body's lines.

Every table of ``storage.schema.metadata`` is dumped (tables added by later
migrations are included without a change here), in dependency order, inside
one read transaction: SQLite's WAL gives a deferred transaction a snapshot at
its first read, PostgreSQL's REPEATABLE READ does the same. Writers go on
meanwhile and the backup sees none of their changes.

The body is JSON lines (UTF-8), each a directive object or a row array::

    {"table": "keys", "columns": ["id", ...], "binary": ["material"], "rows": 3}
    ["7f0c...", "payments/cards", ...]            one line per row, in column order
    {"canary": {...}}                             after the last table

Binary columns are standard base64 strings; ``None`` is ``null``; floats are
written as the shortest decimal that reads back to the same double.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, LargeBinary, Table, func, select, text

from keyquorum.storage.schema import metadata

_ROWS_PER_FETCH = 1000


@contextmanager
def consistent_read(engine: Engine) -> Iterator[Connection]:
    """A connection whose reads all see one snapshot of the store; nothing is written."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            # pysqlite opens transactions only before writes: begin explicitly, so the
            # first SELECT pins the WAL snapshot every later SELECT reads.
            conn.exec_driver_sql("BEGIN")
            try:
                yield conn
            finally:
                conn.rollback()
        return
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        try:
            yield conn
        finally:
            conn.rollback()


def tables() -> list[Table]:
    """Every table, parents before children (foreign keys)."""
    return list(metadata.sorted_tables)


def table_counts(conn: Connection) -> dict[str, int]:
    return {table.name: int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)
            for table in tables()}


def schema_revision(conn: Connection) -> str | None:
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _binary_columns(table: Table) -> list[str]:
    return [c.name for c in table.columns if isinstance(c.type, LargeBinary)]


def body_lines(conn: Connection, counts: dict[str, int],
               canaries: list[dict[str, Any]]) -> Iterator[bytes]:
    """The body, a line at a time: each table's directive and rows, then the canaries."""
    for table in tables():
        columns = [c.name for c in table.columns]
        binary = _binary_columns(table)
        positions = [columns.index(name) for name in binary]
        yield orjson.dumps({"table": table.name, "columns": columns, "binary": binary,
                            "rows": counts[table.name]}) + b"\n"
        order = list(table.primary_key.columns) or list(table.columns)
        result = conn.execute(select(table).order_by(*order)
                              .execution_options(yield_per=_ROWS_PER_FETCH))
        for row in result:
            values = list(row)
            for at in positions:
                if values[at] is not None:
                    values[at] = base64.b64encode(values[at]).decode("ascii")
            yield orjson.dumps(values) + b"\n"
    for canary in canaries:
        yield orjson.dumps({"canary": canary}) + b"\n"
