"""The audit log: group commit under real threads, fail closed, filtered newest-first paging."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, event, text

from keyquorum.audit import AuditLog, AuditRecord, to_json
from keyquorum.audit.log import SWEEP_SECONDS
from keyquorum.errors import AuditUnavailable, InvalidRequest

pytestmark = pytest.mark.postgresql


@pytest.fixture
def engine(store_engine: Engine) -> Engine:
    """A store at the newest schema: SQLite, then PostgreSQL."""
    return store_engine


@pytest.fixture
def audit(engine: Engine) -> Iterator[AuditLog]:
    log = AuditLog(engine)
    log.start()
    yield log
    log.stop(timeout=10)


class CommitGate:
    """Counts transactions; can hold the first one open so that a group queues behind it."""

    def __init__(self, engine: Engine, *, hold_first: bool = False) -> None:
        self.commits = 0
        self.holding = threading.Event()
        self.release = threading.Event()
        self._hold_first = hold_first
        event.listen(engine, "commit", self._on_commit)

    def _on_commit(self, _connection: object) -> None:
        self.commits += 1
        if self._hold_first and self.commits == 1:
            self.holding.set()
            self.release.wait(10)


def record(request_id: str, **fields: object) -> AuditRecord:
    values: dict[str, object] = {
        "time": 1_700_000_000.0, "request_id": request_id, "identity": "acc_00000000000000aa",
        "operation": "encrypt", "key": "app/orders", "key_version": 1, "outcome": "ok",
        "error_code": None, "client": "127.0.0.1"}
    values.update(fields)
    return AuditRecord(**values)  # type: ignore[arg-type]


def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def in_threads(count: int, work: Callable[[int], None]) -> tuple[list[threading.Thread],
                                                                  dict[int, BaseException | None]]:
    """Start ``count`` threads running ``work(i)``; outcomes map i to the exception or None."""
    outcomes: dict[int, BaseException | None] = {}

    def run(index: int) -> None:
        try:
            work(index)
        except BaseException as exc:
            outcomes[index] = exc
        else:
            outcomes[index] = None

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    return threads, outcomes


def all_records(audit: AuditLog) -> list[AuditRecord]:
    return audit.query(limit=1000)[0]


# -- group commit ---------------------------------------------------------------

def test_concurrent_writers_all_land_with_distinct_ids(engine: Engine, audit: AuditLog) -> None:
    gate = CommitGate(engine)
    start = threading.Barrier(16)

    def writer(index: int) -> None:
        start.wait()
        for n in range(25):
            audit.write_sync(record(f"t{index}-{n}"))

    threads, outcomes = in_threads(16, writer)
    for thread in threads:
        thread.join()
    assert set(outcomes.values()) == {None}
    stored = all_records(audit)
    assert len(stored) == 400
    assert len({r.id for r in stored}) == 400
    assert {r.request_id for r in stored} == {f"t{i}-{n}" for i in range(16) for n in range(25)}
    assert gate.commits < 400  # waiters shared transactions


def test_records_queued_during_a_commit_go_together_in_one_transaction(
        engine: Engine, audit: AuditLog) -> None:
    gate = CommitGate(engine, hold_first=True)
    first, first_outcome = in_threads(1, lambda _: audit.write_sync(record("first")))
    assert gate.holding.wait(10)
    group, outcomes = in_threads(20, lambda i: audit.write_sync(record(f"grouped-{i}")))
    eventually(lambda: audit.backlog == 20)
    gate.release.set()
    for thread in first + group:
        thread.join()
    assert first_outcome == {0: None} and set(outcomes.values()) == {None}
    assert gate.commits == 2  # one for "first", one for all twenty behind it
    assert len(all_records(audit)) == 21


# -- failing closed ---------------------------------------------------------------

def test_a_failed_write_fails_every_waiter_sync_and_async(engine: Engine,
                                                          audit: AuditLog) -> None:
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE audit_records"))
    threads, outcomes = in_threads(12, lambda i: audit.write_sync(record(f"r{i}")))
    for thread in threads:
        thread.join()
    assert len(outcomes) == 12
    assert all(isinstance(exc, AuditUnavailable) for exc in outcomes.values())

    async def from_handlers() -> list[object]:
        return await asyncio.gather(*(audit.write(record(f"a{i}")) for i in range(5)),
                                    return_exceptions=True)

    results = asyncio.run(from_handlers())
    assert all(isinstance(result, AuditUnavailable) for result in results)
    assert audit.running  # a failed group does not stop the log


def test_nothing_of_a_failed_group_is_stored(engine: Engine, audit: AuditLog) -> None:
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(text(
                "CREATE TRIGGER poison BEFORE INSERT ON audit_records "
                "WHEN NEW.request_id = 'poison' BEGIN SELECT RAISE(ABORT, 'refused'); END"))
        else:
            connection.execute(text(
                "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF NEW.request_id = 'poison' THEN RAISE EXCEPTION 'refused'; END IF; "
                "RETURN NEW; END $$"))
            connection.execute(text(
                "CREATE TRIGGER poison BEFORE INSERT ON audit_records "
                "FOR EACH ROW EXECUTE FUNCTION poison()"))
    gate = CommitGate(engine, hold_first=True)
    first, first_outcome = in_threads(1, lambda _: audit.write_sync(record("first")))
    assert gate.holding.wait(10)
    names = ["good-0", "good-1", "poison", "good-2", "good-3"]
    group, outcomes = in_threads(len(names), lambda i: audit.write_sync(record(names[i])))
    eventually(lambda: audit.backlog == len(names))
    gate.release.set()
    for thread in first + group:
        thread.join()
    assert first_outcome == {0: None}
    assert all(isinstance(exc, AuditUnavailable) for exc in outcomes.values())
    assert [r.request_id for r in all_records(audit)] == ["first"]


def test_a_waiter_that_times_out_is_withdrawn_and_not_stored(engine: Engine,
                                                             audit: AuditLog) -> None:
    gate = CommitGate(engine, hold_first=True)
    first, _ = in_threads(1, lambda _: audit.write_sync(record("first")))
    assert gate.holding.wait(10)
    with pytest.raises(AuditUnavailable, match="timed out"):
        audit.write_sync(record("late"), timeout=0.05)
    assert audit.backlog == 0
    gate.release.set()
    first[0].join()
    assert [r.request_id for r in all_records(audit)] == ["first"]


def test_writes_before_start_or_after_stop_are_refused(engine: Engine) -> None:
    log = AuditLog(engine)
    with pytest.raises(AuditUnavailable):
        log.write_sync(record("early"))
    log.start()
    log.write_sync(record("ok"))
    log.stop()
    with pytest.raises(AuditUnavailable):
        log.write_sync(record("late"))
    with pytest.raises(AuditUnavailable):
        asyncio.run(log.write(record("late-async")))
    log.start()  # and it can run again
    log.write_sync(record("again"))
    log.stop()
    assert [r.request_id for r in all_records(log)] == ["again", "ok"]


def test_stop_drains_what_is_already_queued(engine: Engine, audit: AuditLog) -> None:
    gate = CommitGate(engine, hold_first=True)
    first, _ = in_threads(1, lambda _: audit.write_sync(record("first")))
    assert gate.holding.wait(10)
    queued, outcomes = in_threads(5, lambda i: audit.write_sync(record(f"q{i}")))
    eventually(lambda: audit.backlog == 5)
    stopper, _ = in_threads(1, lambda _: audit.stop())
    eventually(lambda: not audit.running)
    with pytest.raises(AuditUnavailable):
        audit.write_sync(record("refused"))
    gate.release.set()
    for thread in first + queued + stopper:
        thread.join()
    assert set(outcomes.values()) == {None}
    assert len(all_records(audit)) == 6


def test_async_writers_share_transactions_without_blocking_the_loop(
        engine: Engine, audit: AuditLog) -> None:
    gate = CommitGate(engine)

    async def handlers() -> int:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0)

        tick_task = asyncio.create_task(ticker())
        await asyncio.gather(*(audit.write(record(f"a{i}")) for i in range(200)))
        done.set()
        await tick_task
        return ticks

    ticks = asyncio.run(handlers())
    assert len(all_records(audit)) == 200
    assert gate.commits < 200
    assert ticks > 0  # the loop kept running while the writes were in flight


# -- reading --------------------------------------------------------------------

def seed(audit: AuditLog) -> None:
    rows = [
        record("r1", time=100.0, key="app/a", operation="encrypt"),
        record("r2", time=200.0, key="app/b", operation="decrypt", identity="acc_00000000000000bb"),
        record("r3", time=300.0, key="app/a", operation="decrypt", outcome="denied",
               error_code="forbidden"),
        record("r4", time=400.0, key=None, key_version=None, operation="random"),
        record("r5", time=500.0, key="app/a", operation="rotate", outcome="error",
               error_code="key_state", detail={"reason": "disabled"}),
    ]
    for row in rows:
        audit.write_sync(row)


@pytest.mark.parametrize(("filters", "expected"), [
    ({}, ["r5", "r4", "r3", "r2", "r1"]),
    ({"key": "app/a"}, ["r5", "r3", "r1"]),
    ({"identity": "acc_00000000000000bb"}, ["r2"]),
    ({"operation": "decrypt"}, ["r3", "r2"]),
    ({"outcome": "denied"}, ["r3"]),
    ({"since": 200.0}, ["r5", "r4", "r3", "r2"]),
    ({"until": 300.0}, ["r2", "r1"]),
    ({"since": 200.0, "until": 400.0, "key": "app/a"}, ["r3"]),
    ({"key": "nope"}, []),
])
def test_query_filters_newest_first(audit: AuditLog, filters: dict[str, object],
                                    expected: list[str]) -> None:
    seed(audit)
    records, next_page = audit.query(**filters)  # type: ignore[arg-type]
    assert [r.request_id for r in records] == expected
    assert next_page is None


def test_paging_walks_every_record_once(audit: AuditLog) -> None:
    seed(audit)
    seen: list[str] = []
    page_token: str | None = None
    pages = 0
    while True:
        records, page_token = audit.query(limit=2, page_token=page_token)
        seen += [r.request_id for r in records]
        pages += 1
        if page_token is None:
            break
    assert seen == ["r5", "r4", "r3", "r2", "r1"] and pages == 3
    audit.write_sync(record("r6", time=600.0))  # a new record does not shift later pages
    first, token = audit.query(limit=2)
    assert [r.request_id for r in first] == ["r6", "r5"]
    assert [r.request_id for r in audit.query(limit=2, page_token=token)[0]] == ["r4", "r3"]


@pytest.mark.parametrize("arguments", [
    {"limit": 0}, {"limit": 1001}, {"limit": True}, {"page_token": "abc"},
    {"page_token": "-1"}, {"page_token": "9" * 30}, {"outcome": "maybe"},
])
def test_bad_query_arguments_are_invalid(audit: AuditLog, arguments: dict[str, object]) -> None:
    with pytest.raises(InvalidRequest):
        audit.query(**arguments)  # type: ignore[arg-type]


def test_records_read_back_as_written(audit: AuditLog) -> None:
    seed(audit)
    newest = audit.query(limit=1)[0][0]
    assert newest.detail == {"reason": "disabled"}
    assert newest.error_code == "key_state" and newest.outcome == "error"
    assert newest.id is not None
    assert newest == record("r5", time=500.0, key="app/a", operation="rotate",
                            outcome="error", error_code="key_state",
                            detail={"reason": "disabled"}, id=newest.id,
                            chain_hash=newest.chain_hash)
    assert newest.chain_hash is not None and len(newest.chain_hash) == 64


def test_json_form_has_exactly_the_documented_fields(audit: AuditLog) -> None:
    audit.write_sync(record("r1", time=1_700_000_000.25))
    body = to_json(audit.query()[0][0])
    assert list(body) == ["id", "time", "request_id", "identity", "operation", "key",
                          "key_version", "outcome", "error_code", "client", "chain_hash"]
    assert body["time"] == "2023-11-14T22:13:20.250000Z"
    assert body["identity"] == "acc_00000000000000aa"
    with_detail = to_json(record("r2", detail={"reason": "superseded"}))
    assert with_detail["detail"] == {"reason": "superseded"}


def test_an_over_long_field_is_cut_to_fit_rather_than_failing_its_group(
        audit: AuditLog) -> None:
    audit.write_sync(record("x" * 500, client="c" * 500))
    stored = audit.query()[0][0]
    assert stored.request_id == "x" * 64 and stored.client == "c" * 64


def test_an_unknown_outcome_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="outcome"):
        record("r1", outcome="fine")


def test_an_async_waiter_that_times_out_is_withdrawn_and_not_stored(engine: Engine,
                                                                    audit: AuditLog) -> None:
    """The event loop's waiters share one deadline sweep (no timer per write): a write
    still queued at its deadline fails, is taken out of the queue, and never lands;
    a write settled before its deadline is not disturbed by the sweep."""
    gate = CommitGate(engine, hold_first=True)
    first, _ = in_threads(1, lambda _: audit.write_sync(record("first")))
    assert gate.holding.wait(10)

    async def late() -> float:
        started = time.monotonic()
        with pytest.raises(AuditUnavailable, match="timed out"):
            # (wait_for: a sweep that never came would fail the test, not hang it)
            await asyncio.wait_for(audit.write_many([record("late")], timeout=0.3), 5)
        return time.monotonic() - started

    took = asyncio.run(late())
    assert 0.3 <= took < 0.3 + 2 * SWEEP_SECONDS + 1.0, took
    assert audit.backlog == 0
    gate.release.set()
    first[0].join()

    async def on_time() -> None:
        await audit.write_many([record("on-time")], timeout=0.3)
        await asyncio.sleep(2 * SWEEP_SECONDS)  # the sweep passes over the settled one

    asyncio.run(on_time())
    assert sorted(r.request_id for r in all_records(audit)) == ["first", "on-time"]
