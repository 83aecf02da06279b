"""Group commit for state changes: concurrent changes share one transaction and one fsync.

A state change (create a key, rotate it, ...) is a function of a connection: it
makes its writes, appends its audit record, and returns a value. Run alone, each
change pays a commit, and with ``synchronous=FULL`` a commit is an fsync that
the writer waits for with the store's write lock held, so changes queue behind
each other's fsyncs.

``GroupCommit.run`` runs a change in a transaction shared with the changes
submitted at the same time, and returns only after that transaction committed:

- The first caller becomes the *leader*: it takes every change queued (up to
  ``max_batch``), runs each inside its own SAVEPOINT of one transaction,
  commits once, and wakes the others. Changes that arrive meanwhile queue up, and
  the first of them leads the next group. No thread of its own: the leader is
  a caller's thread, so an idle store adds no hop.
- A change that raises is rolled back to its savepoint and only its caller
  gets the error; the others commit.
- Every change is acknowledged only after the single commit, so an acknowledged
  change (and its audit record, written in the same transaction) is as durable
  as it was alone. If the commit fails, every change of the group fails with
  that error and nothing of the group is stored.
- If a change's failure took the whole transaction with it (SQLite rolls the
  whole transaction back on some I/O errors), the group fails as a whole rather
  than let later changes commit in a new transaction without the earlier ones.
- ``after_commit`` runs in commit order, in the leader, still under ``lock``:
  the place to refresh caches, exactly as when each change held the lock alone.

On SQLite the group transaction opens with ``BEGIN IMMEDIATE``: it takes the
write lock before the first read (no read-to-write upgrade to fail), and the
savepoints nest in it. Without it pysqlite would let the first SAVEPOINT open
the transaction, and releasing that savepoint would commit it.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Engine

from keyquorum.storage.errors import transient_conflict
from keyquorum.storage.prepared import cursor_of
from keyquorum.storage.retry import pause_before_retry

T = TypeVar("T")

DEFAULT_MAX_BATCH = 64
TRANSIENT_TRIES = 5
"""Submissions of a change PostgreSQL keeps aborting for deadlocks before its error stands."""
_SAVEPOINT = "kq_change"


class _Pending(Generic[T]):
    """One submitted change, its outcome, and the event its caller waits on."""

    __slots__ = ("after_commit", "change", "committed", "error", "lead", "result", "wake")

    def __init__(self, change: Callable[[Connection], T],
                 after_commit: Callable[[T], object] | None) -> None:
        self.change = change
        self.after_commit = after_commit
        self.result: T | None = None
        self.error: BaseException | None = None
        self.lead = False  # woken to lead the next group rather than with an outcome
        self.committed = False  # its group committed (an error since is after_commit's)
        self.wake = threading.Event()

    def outcome(self) -> T:
        if self.error is not None:
            # A commit's error is raised in every caller of its group, one object for all
            # (as concurrent.futures does for every waiter of a future).
            raise self.error
        return self.result  # type: ignore[return-value]


class _GroupFailed(Exception):
    """The group's transaction is lost; ``cause`` is what every change of it fails with."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__("the group transaction failed")
        self.cause = cause


class GroupCommit:
    """Runs state changes in shared transactions: one commit for every change queued together."""

    def __init__(self, engine: Engine, *, lock: AbstractContextManager[Any] | None = None,
                 max_batch: int = DEFAULT_MAX_BATCH) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._engine = engine
        self._lock: AbstractContextManager[Any] = lock if lock is not None else nullcontext()
        self._max_batch = max_batch
        self._sqlite = engine.dialect.name == "sqlite"
        self._mutex = threading.Lock()
        self._queue: deque[_Pending[Any]] = deque()
        self._leading = False  # invariant: while False, the queue is empty
        self._leader: int | None = None  # the thread running a group's changes

    def run(self, change: Callable[[Connection], T], *,
            after_commit: Callable[[T], object] | None = None) -> T:
        """Run ``change`` in a group transaction; its result once that transaction committed.

        Raises what ``change`` raised (only its own writes are undone), what
        ``after_commit`` raised (the change is committed), or the commit's error
        (nothing of the group is stored).
        """
        if self._leader == threading.get_ident():  # from a change or an after_commit
            raise RuntimeError("a change cannot submit another change: it would wait "
                               "for its own group")
        for attempt in range(1, TRANSIENT_TRIES + 1):
            pending = self._submit(change, after_commit)
            if pending.error is None or pending.committed \
                    or transient_conflict(pending.error) is None or attempt == TRANSIENT_TRIES:
                return pending.outcome()
            # PostgreSQL aborted this change for a deadlock with another node's
            # transaction (see keyquorum.storage.retry): its savepoint rolled back, so it
            # is submitted again, as a change of a later group.
            pause_before_retry(attempt)
        raise AssertionError("unreachable")

    def _submit(self, change: Callable[[Connection], T],
                after_commit: Callable[[T], object] | None) -> _Pending[T]:
        """Queue ``change``, lead or wait for its group; the settled entry."""
        pending: _Pending[T] = _Pending(change, after_commit)
        with self._mutex:
            self._queue.append(pending)
            lead = not self._leading
            self._leading = True
        if not lead:
            pending.wake.wait()
            if not pending.lead:
                return pending
        self._lead()
        return pending

    @property
    def backlog(self) -> int:
        """Changes queued and not yet taken by a leader."""
        return len(self._queue)

    # -- the leader ---------------------------------------------------------------------------

    def _lead(self) -> None:
        """Run one group (the caller's change is first in the queue), then hand over."""
        with self._mutex:
            batch = [self._queue.popleft()
                     for _ in range(min(self._max_batch, len(self._queue)))]
        try:
            self._run_group(batch)
        finally:
            successor: _Pending[Any] | None = None
            with self._mutex:
                if self._queue:
                    successor = self._queue[0]
                    successor.lead = True
                else:
                    self._leading = False
            for pending in batch[1:]:  # batch[0] is this thread's own change
                pending.wake.set()
            if successor is not None:
                successor.wake.set()

    def _run_group(self, batch: list[_Pending[Any]]) -> None:
        with self._lock:
            self._leader = threading.get_ident()
            try:
                if self._transaction(batch):
                    self._after_commit(batch)
            finally:
                self._leader = None

    @staticmethod
    def _after_commit(batch: list[_Pending[Any]]) -> None:
        for pending in batch:
            pending.committed = pending.error is None
            if pending.error is None and pending.after_commit is not None:
                try:
                    pending.after_commit(pending.result)
                except Exception as exc:  # committed, but its caller hears of it
                    pending.error = exc

    def _transaction(self, batch: list[_Pending[Any]]) -> bool:
        """Every change of ``batch`` in one transaction; False if it did not commit."""
        try:
            with self._engine.begin() as conn:
                if self._sqlite:
                    with cursor_of(conn) as cursor:
                        cursor.execute("BEGIN IMMEDIATE")
                for pending in batch:
                    self._apply(conn, pending)
        except _GroupFailed as failed:
            self._fail(batch, failed.cause)
            return False
        except Exception as exc:  # BEGIN or COMMIT failed: nothing of the group is stored
            self._fail(batch, exc)
            return False
        except BaseException as exc:  # interrupted: nobody may take the group as committed
            self._fail(batch, exc)
            raise
        return True

    def _apply(self, conn: Connection, pending: _Pending[Any]) -> None:
        """One change inside its own savepoint: its failure undoes its writes only.

        The savepoint statements go straight to the driver (a few µs, against ~40 µs
        for ``begin_nested``); SQLAlchemy needs not know of them, as every one is
        released or rolled back before the next change starts.
        """
        with cursor_of(conn) as cursor:
            cursor.execute(f"SAVEPOINT {_SAVEPOINT}")
        try:
            pending.result = pending.change(conn)
        except Exception as exc:
            pending.error = exc
            try:
                with cursor_of(conn) as cursor:
                    cursor.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
                    cursor.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
            except Exception as rollback_error:
                raise _GroupFailed(exc) from rollback_error
            if not self._still_open(conn):
                raise _GroupFailed(exc) from None
            return
        with cursor_of(conn) as cursor:
            cursor.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")

    def _still_open(self, conn: Connection) -> bool:
        """Whether the group's transaction survived a change's failure.

        SQLite rolls the whole transaction back on some errors (a full disk, an I/O
        error); a later change would then run, and commit, on its own.
        """
        if not self._sqlite:
            return True  # PostgreSQL: a failed statement leaves the transaction to roll back
        dbapi = conn.connection.dbapi_connection
        return bool(getattr(dbapi, "in_transaction", True))

    @staticmethod
    def _fail(batch: list[_Pending[Any]], cause: BaseException) -> None:
        for pending in batch:
            if pending.error is None:
                pending.error = cause
            pending.result = None
