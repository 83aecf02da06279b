"""The whole store as rows: read in one consistent snapshot, written back table by table.

For backup and restore (``backup/``), which shape these rows into the backup body
and back; that format is theirs, the SQL is here.

Every table of ``schema.metadata`` is covered (tables added by later migrations are
included without a change here), in dependency order. The reads run inside one read
transaction: SQLite's WAL gives a deferred transaction a snapshot at its first read,
PostgreSQL's REPEATABLE READ does the same. Writers go on meanwhile and the reader
sees none of their changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, LargeBinary, Table, func, select, text

from keyquorum.storage.schema import metadata

_ROWS_PER_FETCH = 1000


@dataclass(frozen=True, slots=True)
class TableLayout:
    """A table's name, its columns in order, and which of them hold bytes."""

    name: str
    columns: tuple[str, ...]
    binary: tuple[str, ...]


def _layout(table: Table) -> TableLayout:
    return TableLayout(table.name, tuple(c.name for c in table.columns),
                       tuple(c.name for c in table.columns if isinstance(c.type, LargeBinary)))


def layouts() -> list[TableLayout]:
    """Every table, parents before children (foreign keys)."""
    return [_layout(table) for table in metadata.sorted_tables]


def layout_of(name: str) -> TableLayout | None:
    """The table called ``name``, or None if this schema has no such table."""
    table = metadata.tables.get(name)
    return None if table is None else _layout(table)


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


def table_counts(conn: Connection) -> dict[str, int]:
    """Table name → rows, for every table."""
    return {table.name: int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)
            for table in metadata.sorted_tables}


def schema_revision(conn: Connection) -> str | None:
    """The Alembic revision the store is at (None if none is recorded)."""
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def table_rows(conn: Connection, name: str) -> Iterator[Sequence[Any]]:
    """Every row of the table, values in ``layout_of(name).columns`` order, by primary
    key (by every column if it has none), fetched a batch at a time."""
    table = metadata.tables[name]
    order = list(table.primary_key.columns) or list(table.columns)
    yield from conn.execute(select(table).order_by(*order)
                            .execution_options(yield_per=_ROWS_PER_FETCH))


def insert_rows(conn: Connection, name: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (column name → value) into the table called ``name``."""
    if rows:
        conn.execute(metadata.tables[name].insert(), list(rows))
