"""The audit log: every request's record is durably stored before its answer leaves.

Writes use *group commit*. Callers enqueue a record and wait; one writer thread
takes everything queued (up to ``max_batch``), inserts it in one transaction
(one fsync for the whole group) and then wakes every waiter. Under load, many
requests share each fsync, so throughput grows with concurrency instead of
being capped at one commit per request.

Each group is appended to this node's hash chain (``chain.py``; which chain a
process appends to is ``audit.nodes``' choice) and handed to the external sinks
(``sinks.py``) inside its transaction, so records reach every required sink in
chain order, and a required sink that fails rolls the group back.

Fail closed: if a group's transaction fails, nothing of it is stored and every
waiter gets ``AuditUnavailable``, so the operation it was auditing fails too; when
the store itself failed (full disk, database unreachable: ``storage.errors``) they
get its subclass ``AuditStorageUnavailable`` (503 ``storage_unavailable``), which
says where to look.
A waiter that times out is withdrawn if its record was not yet taken; if it was,
the record may still land — the log can over-report an operation, never miss one.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import re
import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from keyquorum.audit.chain import AuditChain, ChainHead, ensure_node
from keyquorum.audit.keys import HASH_HEX_CHARS
from keyquorum.audit.records import OUTCOMES, AuditRecord, from_row, to_row
from keyquorum.audit.sinks import SinkSet
from keyquorum.errors import AuditUnavailable, InvalidRequest, StorageUnavailable
from keyquorum.failure_log import describe_failure
from keyquorum.storage.audit_repo import query_records
from keyquorum.storage.errors import storage_failure

log = logging.getLogger(__name__)

MAX_QUERY_LIMIT = 1000
SWEEP_SECONDS = 0.25
"""How often an event loop's waiting audit writes are checked against their deadlines."""
MAX_RECORD_ID = 2**63 - 1  # audit_records.id is a 64-bit signed integer on every database
PAGE_TOKEN_PATTERN = r"[1-9][0-9]{0,17}"  # noqa: S105 - a position, not a secret
"""What ``query`` issues: a record id, which stays far below 10^18; every token of this
shape is a position to resume from (the OpenAPI document states the same pattern)."""
_PAGE_TOKEN = re.compile(PAGE_TOKEN_PATTERN)
_HASH = re.compile(f"[0-9a-f]{{{HASH_HEX_CHARS}}}")  # a tag from AuditKeys.hash_value


class AuditStorageUnavailable(AuditUnavailable):
    """The audit record could not be written because the store failed (a full disk, an
    unreachable database). Still an audit failure to everything that fails closed on
    one, but answered as 503 ``storage_unavailable``, so the operator looks at the store
    rather than at the audit sinks."""

    code = StorageUnavailable.code

    def __init__(self, message: str = "storage is full or failing; nothing was changed",
                 **details: Any) -> None:
        super().__init__(message, **details)


Failure = type[AuditUnavailable] | None
"""How a group's write failed (``AuditUnavailable`` or ``AuditStorageUnavailable``), or None."""


def _settle_all(futures: list[asyncio.Future[None]], failure: Failure) -> None:
    """Runs on the waiters' event loop (the only thread allowed to touch their futures)."""
    for future in futures:
        if future.done():  # the waiting task was cancelled or timed out
            continue
        if failure is not None:
            future.set_exception(failure())
        else:
            future.set_result(None)


class _Pending:
    """One request's queued records (one or a batch's) and how to wake whoever waits."""

    __slots__ = ("deadline", "event", "failure", "future", "loop", "rows")

    def __init__(self, rows: list[dict[str, Any]], loop: asyncio.AbstractEventLoop | None = None,
                 future: asyncio.Future[None] | None = None) -> None:
        self.rows = rows
        self.loop = loop
        self.future = future
        self.event = threading.Event() if future is None else None
        self.failure: Failure = None
        self.deadline = 0.0  # loop time after which an async waiter gives up


def _resolve(batch: list[_Pending], failure: Failure) -> None:
    """Wake every waiter of a group: one cross-thread call per event loop, not per record."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for pending in batch:
        pending.failure = failure
        if pending.event is not None:
            pending.event.set()
        else:
            assert pending.loop is not None and pending.future is not None
            by_loop.setdefault(pending.loop, []).append(pending.future)
    for loop, futures in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop has nobody left waiting
            loop.call_soon_threadsafe(_settle_all, futures, failure)


class AuditLog:
    """Group-committing audit writer over the ``audit_records`` table, and its reader."""

    def __init__(self, engine: Engine, *, max_batch: int = 512,
                 commit_lock: Path | None = None, sinks: SinkSet | None = None,
                 node: str | None = None) -> None:
        """``node``: the name of the chain this process appends to (``audit.nodes``);
        None for node 1, SQLite's one chain."""
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._engine = engine
        # Several server processes on one SQLite file: take turns through a file lock,
        # which wakes the next writer at once, instead of SQLite's busy handler, which
        # sleeps for up to 100 ms between tries.
        self._commit_lock = open(commit_lock, "a") if commit_lock else None  # noqa: SIM115
        self._max_batch = max_batch
        # The chain exists (and its node is registered) before anything appends,
        # in-process users included.
        self.node_id = ensure_node(engine, node)
        self.chain = AuditChain(engine, self.node_id)
        self.sinks = sinks if sinks is not None else SinkSet([])
        self._queue: deque[_Pending] = deque()
        self._waiting: dict[asyncio.AbstractEventLoop, list[_Pending]] = {}  # async waiters
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._accepting = False

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        self.sinks.start()
        with self._cond:
            if self._accepting:
                return
            previous = self._thread
        if previous is not None:  # a stop() still draining: let it finish first
            previous.join()
        with self._cond:
            if self._accepting:
                return
            self._accepting = True
            self._thread = threading.Thread(target=self._run, name="keyquorum-audit",
                                            daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Refuse new records, write every queued one, then end the writer thread."""
        with self._cond:
            self._accepting = False
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if not thread.is_alive():
                with self._cond:
                    if self._thread is thread:
                        self._thread = None
        self.sinks.stop()

    @property
    def running(self) -> bool:
        return self._accepting

    @property
    def backlog(self) -> int:
        """Records queued and not yet taken by the writer (for health and metrics)."""
        return len(self._queue)

    # -- writing -----------------------------------------------------------------

    def write_sync(self, record: AuditRecord, timeout: float = 10.0) -> None:
        """Store ``record`` durably, from a thread; ``AuditUnavailable`` if it could not be."""
        pending = _Pending([to_row(record)])
        self._enqueue(pending)
        assert pending.event is not None
        if not pending.event.wait(timeout):
            self._withdraw(pending)
            raise AuditUnavailable("the audit write timed out, so nothing was done")
        if pending.failure is not None:
            raise pending.failure()

    async def write(self, record: AuditRecord, *, timeout: float = 10.0) -> None:
        """Store ``record`` durably without blocking the event loop."""
        await self.write_many([record], timeout=timeout)

    async def write_many(self, records: list[AuditRecord], *, timeout: float = 10.0) -> None:
        """Store a request's records (a batch's items) together: all of them or none."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        pending = _Pending([to_row(record) for record in records], loop, future)
        pending.deadline = loop.time() + timeout
        self._enqueue(pending)
        self._watch(loop, pending)
        await future  # the writer settles it, or _sweep_waiters once its deadline passed

    def _watch(self, loop: asyncio.AbstractEventLoop, pending: _Pending) -> None:
        """Put an async waiter under the deadline sweep of its loop.

        One sweep every ``SWEEP_SECONDS`` per loop instead of a timer per request:
        ``asyncio.timeout`` cost about 4 us of the event loop per write (a timer made
        and cancelled), some 4 % of a single encrypt. Deadlines are kept within
        ``SWEEP_SECONDS``."""
        waiting = self._waiting.get(loop)
        if waiting is None:
            waiting = self._waiting[loop] = []
            loop.call_later(SWEEP_SECONDS, self._sweep_waiters, loop)
        waiting.append(pending)

    def _sweep_waiters(self, loop: asyncio.AbstractEventLoop) -> None:
        """On ``loop``: fail the waiters whose deadline passed (withdrawn if the writer
        has not taken them yet), forget the settled ones, and come back while any wait."""
        now = loop.time()
        still: list[_Pending] = []
        for pending in self._waiting.pop(loop, []):
            future = pending.future
            assert future is not None
            if future.done():
                continue
            if now < pending.deadline:
                still.append(pending)
                continue
            self._withdraw(pending)
            future.set_exception(
                AuditUnavailable("the audit write timed out, so nothing was done"))
        if still:
            self._waiting[loop] = still
            loop.call_later(SWEEP_SECONDS, self._sweep_waiters, loop)

    def _enqueue(self, pending: _Pending) -> None:
        with self._cond:
            if not self._accepting:
                raise AuditUnavailable("the audit log is not running, so nothing was done")
            self._queue.append(pending)
            self._cond.notify()

    def _withdraw(self, pending: _Pending) -> None:
        # ValueError: already taken by the writer, so it may still be stored.
        with self._cond, contextlib.suppress(ValueError):
            self._queue.remove(pending)

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._queue and self._accepting:
                        self._cond.wait()
                    if not self._queue:  # stopped and drained
                        return
                    batch = [self._queue.popleft()]
                    rows = len(batch[0].rows)
                    while self._queue and rows + len(self._queue[0].rows) <= self._max_batch:
                        batch.append(self._queue.popleft())
                        rows += len(batch[-1].rows)
                _resolve(batch, self._commit(batch))
        except BaseException as exc:
            log.error("audit writer crashed; refusing further records: %s",
                      describe_failure(exc))
            self._fail_all()
            raise

    def append_in(self, connection: Connection, records: list[AuditRecord]) -> ChainHead:
        """Append ``records`` inside the caller's transaction (a lifecycle change's own record).

        The change and its records commit together; a failure here (storage or a
        required sink) raises, and the caller's transaction rolls back with it.
        """
        return self._append_rows(connection, [to_row(record) for record in records])

    def _append_rows(self, connection: Connection, rows: list[dict[str, Any]]) -> ChainHead:
        """Link and store ``rows``, then hand them to the sinks, before the caller commits.

        Both writers come here, so records reach every required sink in chain order.
        """
        head = self.chain.append(connection, rows)
        self.sinks.deliver(rows)
        return head

    def _commit(self, batch: list[_Pending]) -> Failure:
        """Append the group in one transaction; all of it or none of it (then how it failed)."""
        try:
            rows = [row for pending in batch for row in pending.rows]
            with self._between_processes(), self._engine.begin() as connection:
                self._append_rows(connection, rows)
        except Exception as exc:
            # The exception's text is not logged: drivers put the bound parameters in it.
            # A full or failing disk is named as such (SQLITE_FULL, SQLSTATE 53100, ...).
            reason = storage_failure(exc)
            log.error("audit write of %d record(s) failed (%s); their operations fail",
                      len(batch), reason or type(exc).__name__)
            return AuditUnavailable if reason is None else AuditStorageUnavailable
        return None

    @contextlib.contextmanager
    def _between_processes(self) -> Iterator[None]:
        if self._commit_lock is None:
            yield
            return
        fcntl.flock(self._commit_lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._commit_lock, fcntl.LOCK_UN)

    def _fail_all(self) -> None:
        with self._cond:
            self._accepting = False
            stranded = list(self._queue)
            self._queue.clear()
        _resolve(stranded, AuditUnavailable)

    # -- reading -----------------------------------------------------------------

    def query(self, *, key: str | None = None, identity: str | None = None,
              operation: str | None = None, outcome: str | None = None,
              context: str | None = None,
              since: float | None = None, until: float | None = None, limit: int = 100,
              page_token: str | None = None) -> tuple[list[AuditRecord], str | None]:
        """Matching records, newest first, and the token for the next page (or ``None``).

        ``since`` is inclusive and ``until`` exclusive (epoch seconds). Pages are
        cut by record id, so records written meanwhile never shift a page.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) \
                or not 1 <= limit <= MAX_QUERY_LIMIT:
            raise InvalidRequest(f"limit must be an integer from 1 to {MAX_QUERY_LIMIT}")
        if outcome is not None and outcome not in OUTCOMES:
            raise InvalidRequest("outcome must be one of ok, denied, error")
        # context: an HMAC from /v1/audit/hash, of a name or a value in the context
        if context is not None and (not isinstance(context, str)
                                    or not _HASH.fullmatch(context)):
            raise InvalidRequest("context must be a hash answered by /v1/audit/hash")
        before_id = _decode_page_token(page_token) if page_token is not None else None
        rows = query_records(self._engine, equal={"key": key, "identity": identity,
                                                  "operation": operation, "outcome": outcome},
                             context_tag=context, since=since, until=until,
                             before_id=before_id, limit=limit + 1)
        records = [from_row(row) for row in rows[:limit]]
        more = len(rows) > limit
        return records, (str(records[-1].id) if more else None)


def _decode_page_token(page_token: str) -> int:
    """The record id in a token ``query`` issued: ``str(id)`` of a stored record, so ASCII
    digits without a leading zero, from 1 to the id column's largest value."""
    if isinstance(page_token, str) and _PAGE_TOKEN.fullmatch(page_token):
        record_id = int(page_token)
        if record_id <= MAX_RECORD_ID:
            return record_id
    raise InvalidRequest("page_token is not one this server issued")
