"""Recognise a storage failure: the database's disk is full or failing, or the database
cannot be reached.

Such a failure is neither the caller's mistake nor a bug. The transaction that met
it rolled back, so nothing was changed, and the same request succeeds once space is
freed or the database is back. ``keyquorum.api.errors.translate`` turns it into
``StorageUnavailable`` (503 ``storage_unavailable``) instead of a 500.

Recognised without importing any driver, so PostgreSQL's errors are known even where
psycopg is not installed:

- SQLite (pysqlite): ``SQLITE_FULL`` and every ``SQLITE_IOERR_*``, by the exception's
  ``sqlite_errorcode``, or by SQLite's own message where a driver gives no code;
- PostgreSQL (psycopg 3 ``sqlstate``, psycopg2 ``pgcode``): ``53100 disk_full`` and
  ``58030 io_error``; and the database out of reach (``UNREACHABLE``): every
  ``08xxx`` connection exception, ``57P01``-``57P03`` (shut down, crashed, starting
  up), ``53300`` too many connections, ``25006`` read-only (a standby after a
  failover), a driver ``OperationalError`` without a SQLSTATE (refused, timed out,
  closed mid-query: libpq's own failures), and SQLAlchemy's pool giving no
  connection in time.

A lost connection also invalidates SQLAlchemy's pool, and every pooled connection is
tested before use, so once PostgreSQL answers again the next requests succeed with no
restart. A connection lost *during* COMMIT leaves that one transaction's outcome
unknown to the client (PostgreSQL applied all of it or none of it); the answer is
still 503, and a retry finds out which.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

log = logging.getLogger(__name__)

# SQLite's primary result codes; an extended one (SQLITE_IOERR_WRITE, ...) has it in its low byte.
SQLITE_IOERR = 10
SQLITE_FULL = 13
_SQLITE_CODES = {SQLITE_IOERR: "SQLITE_IOERR", SQLITE_FULL: "SQLITE_FULL"}
_SQLSTATES = {"53100": "SQLSTATE 53100 disk_full", "58030": "SQLSTATE 58030 io_error",
              "57P01": "SQLSTATE 57P01 admin_shutdown", "57P02": "SQLSTATE 57P02 crash_shutdown",
              "57P03": "SQLSTATE 57P03 cannot_connect_now",
              "53300": "SQLSTATE 53300 too_many_connections",
              "25006": "SQLSTATE 25006 read_only_sql_transaction"}
UNREACHABLE = "database unreachable"
"""The reason given for a PostgreSQL that refused, dropped or timed out a connection."""
_PG_DRIVERS = ("psycopg", "psycopg2")
# SQLite's messages for those codes, and the OS's for ENOSPC as some drivers pass it on.
_MESSAGES = {"database or disk is full": "SQLITE_FULL", "disk i/o error": "SQLITE_IOERR",
             "no space left on device": "ENOSPC"}

NOTICE_INTERVAL = 30.0
"""Seconds between two log lines about failing storage: a full disk fails every write."""


def storage_failure(exc: BaseException) -> str | None:
    """Why storage failed (``"SQLITE_FULL"``, ``"SQLSTATE 53100 disk_full"``, ...), or None.

    ``exc`` is a driver's exception or SQLAlchemy's wrapper of one (``.orig``).
    """
    if isinstance(exc, PoolTimeout):  # every pooled connection busy: the database stalls
        return "connection pool exhausted"
    driver = exc.orig if isinstance(exc, DBAPIError) else exc
    code = getattr(driver, "sqlite_errorcode", None)
    if isinstance(code, int):
        if code & 0xFF not in _SQLITE_CODES:
            return None
        name = getattr(driver, "sqlite_errorname", None)
        return name if isinstance(name, str) else _SQLITE_CODES[code & 0xFF]
    state = getattr(driver, "sqlstate", None) or getattr(driver, "pgcode", None)
    if isinstance(state, str):
        if state.startswith("08"):
            return f"SQLSTATE {state} connection_exception"
        return _SQLSTATES.get(state)
    if driver is not None and _is_pg_operational(driver):
        return UNREACHABLE
    # A driver that gives no code (another SQLite binding): SQLite's own words. Only a
    # database error's text is read, never an arbitrary exception's.
    if isinstance(exc, DBAPIError) or isinstance(driver, sqlite3.Error):
        text = str(driver).lower()
        for fragment, name in _MESSAGES.items():
            if fragment in text:
                return name
    return None


_TRANSIENT = {"40P01": "SQLSTATE 40P01 deadlock_detected",
              "40001": "SQLSTATE 40001 serialization_failure"}


def transient_conflict(exc: BaseException) -> str | None:
    """Why PostgreSQL gave up a transaction that would succeed if run again, or None.

    A deadlock between two nodes' transactions (PostgreSQL aborts one of them) or a
    serialization failure: nothing of the aborted transaction was applied, and the
    same work, run again from the start, is expected to succeed (PostgreSQL's manual,
    "Serialization Failure Handling"). ``retrying`` does that; what still fails after
    its tries is answered 503 ``storage_unavailable``, never 500.
    """
    driver = exc.orig if isinstance(exc, DBAPIError) else exc
    state = getattr(driver, "sqlstate", None) or getattr(driver, "pgcode", None)
    return _TRANSIENT.get(state) if isinstance(state, str) else None


def _is_pg_operational(driver: BaseException) -> bool:
    """A PostgreSQL driver's ``OperationalError`` (or subclass) with no SQLSTATE: libpq
    itself failed (connection refused, timed out, closed), no server statement did."""
    for cls in type(driver).__mro__:
        if cls.__name__ == "OperationalError" \
                and cls.__module__.split(".")[0] in _PG_DRIVERS:
            return True
    return False


def is_storage_failure(exc: BaseException) -> bool:
    """True if ``exc`` says the database's disk is full or failing."""
    return storage_failure(exc) is not None


class _Notice:
    """Logs a storage failure at most once per ``NOTICE_INTERVAL``, counting the rest."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = float("-inf")
        self._unlogged = 0

    def __call__(self, reason: str) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last < NOTICE_INTERVAL:
                self._unlogged += 1
                return
            self._last, unlogged, self._unlogged = now, self._unlogged, 0
        log.warning("storage is full or failing (%s): requests that write are refused with "
                    "503 storage_unavailable%s", reason,
                    f" ({unlogged} more since the last notice)" if unlogged else "")


note_storage_failure = _Notice()
"""Tell the operator storage is failing, without a line per refused request."""


def failure_kind(exc: BaseException) -> str:
    """What an unexpected exception was, for a log line: its type, and for a database
    error the driver's exception type and SQLSTATE or SQLite code. Never its text:
    drivers put bound parameters (token hashes, blobs) in their messages."""
    kind = type(exc).__name__
    driver = exc.orig if isinstance(exc, DBAPIError) else None
    if driver is None:
        return kind
    code = getattr(driver, "sqlstate", None) or getattr(driver, "pgcode", None) \
        or getattr(driver, "sqlite_errorname", None)
    return f"{kind} ({type(driver).__name__}{f', {code}' if isinstance(code, str) else ''})"
