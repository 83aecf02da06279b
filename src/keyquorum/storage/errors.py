"""Recognise a storage failure: the database's disk is full or failing.

Such a failure is neither the caller's mistake nor a bug. The transaction that met
it rolled back, so nothing was changed, and the same request succeeds once space is
freed. ``keyquorum.api.errors.translate`` turns it into ``StorageUnavailable``
(503 ``storage_unavailable``) instead of a 500.

Recognised without importing any driver, so PostgreSQL's errors are known even where
psycopg is not installed:

- SQLite (pysqlite): ``SQLITE_FULL`` and every ``SQLITE_IOERR_*``, by the exception's
  ``sqlite_errorcode``, or by SQLite's own message where a driver gives no code;
- PostgreSQL (psycopg 3 ``sqlstate``, psycopg2 ``pgcode``): ``53100 disk_full`` and
  ``58030 io_error``.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time

from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

# SQLite's primary result codes; an extended one (SQLITE_IOERR_WRITE, ...) has it in its low byte.
SQLITE_IOERR = 10
SQLITE_FULL = 13
_SQLITE_CODES = {SQLITE_IOERR: "SQLITE_IOERR", SQLITE_FULL: "SQLITE_FULL"}
_SQLSTATES = {"53100": "SQLSTATE 53100 disk_full", "58030": "SQLSTATE 58030 io_error"}
# SQLite's messages for those codes, and the OS's for ENOSPC as some drivers pass it on.
_MESSAGES = {"database or disk is full": "SQLITE_FULL", "disk i/o error": "SQLITE_IOERR",
             "no space left on device": "ENOSPC"}

NOTICE_INTERVAL = 30.0
"""Seconds between two log lines about failing storage: a full disk fails every write."""


def storage_failure(exc: BaseException) -> str | None:
    """Why storage failed (``"SQLITE_FULL"``, ``"SQLSTATE 53100 disk_full"``, ...), or None.

    ``exc`` is a driver's exception or SQLAlchemy's wrapper of one (``.orig``).
    """
    driver = exc.orig if isinstance(exc, DBAPIError) else exc
    code = getattr(driver, "sqlite_errorcode", None)
    if isinstance(code, int):
        if code & 0xFF not in _SQLITE_CODES:
            return None
        name = getattr(driver, "sqlite_errorname", None)
        return name if isinstance(name, str) else _SQLITE_CODES[code & 0xFF]
    state = getattr(driver, "sqlstate", None) or getattr(driver, "pgcode", None)
    if isinstance(state, str):
        return _SQLSTATES.get(state)
    # A driver that gives no code (another SQLite binding): SQLite's own words. Only a
    # database error's text is read, never an arbitrary exception's.
    if isinstance(exc, DBAPIError) or isinstance(driver, sqlite3.Error):
        text = str(driver).lower()
        for fragment, name in _MESSAGES.items():
            if fragment in text:
                return name
    return None


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
