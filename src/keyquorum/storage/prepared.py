"""Statements compiled once per dialect and run on the DBAPI cursor of the caller's connection.

For the few statements that run on every state change or every audit group.
SQLAlchemy builds, keys and compiles a Core statement and wraps its result in
rows; for a one-row insert or lookup that costs more CPU, under the GIL, than
the database spends on the row (a key lookup: 120 µs through Core, 25 µs
here). The SQL is still SQLAlchemy's, compiled for the connection's dialect,
and values travel as driver parameters, never in the SQL text. The cursor is
the connection's own, so the statements run in the caller's transaction.

Only for columns whose Python values the drivers take and give back as they are
(text, integers, floats, booleans, bytes): no SQLAlchemy type processing runs.
A driver's error is raised as SQLAlchemy's wrapper of it (``IntegrityError``, ...),
as through Core, so callers catch the same exceptions, with the parameters hidden
(they can be key material).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError


class Prepared:
    """One statement, compiled for one dialect; ``params`` orders a row's values for it."""

    __slots__ = ("positions", "sql")

    def __init__(self, dialect: Dialect, statement: Any,
                 column_keys: list[str] | None = None) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        self.sql = str(compiled)
        self.positions = tuple(compiled.positiontup) \
            if compiled.positional and compiled.positiontup else None

    def params(self, values: Mapping[str, Any]) -> Any:
        return values if self.positions is None else tuple(values[n] for n in self.positions)


class Statements:
    """A statement's ``Prepared`` form per dialect and driver, compiled on first use."""

    def __init__(self, statement: Any, column_keys: list[str] | None = None) -> None:
        self.statement = statement
        self.column_keys = column_keys
        self._compiled: dict[tuple[str, str, str], Prepared] = {}
        self._lock = threading.Lock()

    def on(self, conn: Connection) -> Prepared:
        dialect = conn.dialect
        # The driver decides the parameter style (qmark, pyformat, ...), not only the database.
        key = (dialect.name, dialect.driver, dialect.paramstyle)
        prepared = self._compiled.get(key)
        if prepared is None:
            with self._lock:
                prepared = self._compiled.setdefault(
                    key, Prepared(dialect, self.statement, self.column_keys))
        return prepared


@contextmanager
def cursor_of(conn: Connection) -> Iterator[Any]:
    """A DBAPI cursor of ``conn``'s connection, in its current transaction; closed after.

    A driver error raised in the block comes out as SQLAlchemy's exception for it.
    """
    dbapi_error = conn.dialect.loaded_dbapi.Error
    cursor = conn.connection.cursor()
    try:
        yield cursor
    except dbapi_error as exc:
        raise DBAPIError.instance(None, None, exc, dbapi_error, hide_parameters=True,
                                  dialect=conn.dialect) from exc
    finally:
        cursor.close()
