"""Concurrent state changes share one transaction and one commit, and stay independent."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event, select, text
from sqlalchemy.exc import IntegrityError

from keyquorum.audit.chain import GENESIS, AuditChain, ensure_head, link, read_head
from keyquorum.storage.group_commit import GroupCommit
from keyquorum.storage.schema import audit_records, system_entries

pytestmark = pytest.mark.postgresql


@pytest.fixture
def engine(store_engine: Engine) -> Engine:
    """A store at the newest schema: SQLite, then PostgreSQL."""
    return store_engine


def _count_commits(engine: Engine) -> list[int]:
    commits: list[int] = []
    event.listen(engine, "commit", lambda _conn: commits.append(1))
    return commits


def _entry(name: str) -> Callable[[Connection], str]:
    def change(conn: Connection) -> str:
        conn.execute(system_entries.insert().values(name=name, value=b"v", updated_at=0.0))
        return name
    return change


def _stored(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(system_entries.c.name)).scalars())


def _in_one_group(commits: GroupCommit, first: Callable[[Connection], Any],
                  rest: list[Callable[[Connection], Any]]) -> list[tuple[str, Any]]:
    """Run ``first`` as a leader that waits until every change of ``rest`` is queued, so that
    ``rest`` forms the next group, all together; each outcome as ("ok", value) or ("error", exc)."""
    queued = threading.Event()
    outcomes: list[tuple[str, Any]] = [("", None)] * (1 + len(rest))

    def leading(conn: Connection) -> Any:
        assert queued.wait(10)
        return first(conn)

    def call(index: int, change: Callable[[Connection], Any]) -> None:
        try:
            outcomes[index] = ("ok", commits.run(change))
        except Exception as exc:
            outcomes[index] = ("error", exc)

    threads = [threading.Thread(target=call, args=(0, leading))]
    threads[0].start()
    while commits.backlog:  # until the leader took its own change
        threading.Event().wait(0.001)
    for index, change in enumerate(rest, start=1):
        threads.append(threading.Thread(target=call, args=(index, change)))
        threads[-1].start()
    while commits.backlog < len(rest):
        threading.Event().wait(0.001)
    queued.set()
    for thread in threads:
        thread.join(10)
    return outcomes


def test_changes_queued_together_share_one_commit(engine: Engine) -> None:
    group = GroupCommit(engine)
    commits = _count_commits(engine)
    names = [f"n{i}" for i in range(10)]
    outcomes = _in_one_group(group, _entry("first"), [_entry(n) for n in names])
    assert outcomes == [("ok", "first")] + [("ok", n) for n in names]
    assert _stored(engine) == {"first", *names}
    assert len(commits) == 2  # the leader's own group, then all ten together


def test_a_failing_change_is_undone_alone_and_only_its_caller_hears_of_it(
        engine: Engine) -> None:
    def half_done_then_fails(conn: Connection) -> None:
        conn.execute(system_entries.insert().values(name="half", value=b"v", updated_at=0.0))
        raise ValueError("refused after writing")

    outcomes = _in_one_group(GroupCommit(engine), _entry("first"),
                             [_entry("a"), half_done_then_fails, _entry("b")])
    assert [kind for kind, _ in outcomes] == ["ok", "ok", "error", "ok"]
    assert isinstance(outcomes[2][1], ValueError)
    assert _stored(engine) == {"first", "a", "b"}


def test_a_duplicate_fails_only_its_own_change(engine: Engine) -> None:
    outcomes = _in_one_group(GroupCommit(engine), _entry("first"),
                             [_entry("same"), _entry("same"), _entry("other")])
    assert [kind for kind, _ in outcomes] == ["ok", "ok", "error", "ok"]
    assert isinstance(outcomes[2][1], IntegrityError)
    assert _stored(engine) == {"first", "same", "other"}


def test_a_failed_commit_fails_every_change_of_the_group_and_stores_none(
        engine: Engine) -> None:
    group = GroupCommit(engine)
    commits: list[int] = []

    def second_commit_fails(_conn: Any) -> None:
        commits.append(1)
        if len(commits) == 2:
            raise OSError("disk gone")

    event.listen(engine, "commit", second_commit_fails)
    outcomes = _in_one_group(group, _entry("first"), [_entry("a"), _entry("b")])
    assert outcomes[0] == ("ok", "first")
    assert [kind for kind, _ in outcomes[1:]] == ["error", "error"]
    assert all(isinstance(error, OSError) for _, error in outcomes[1:])
    assert _stored(engine) == {"first"}
    assert group.run(_entry("later")) == "later"  # the next group is unaffected


def test_a_change_that_loses_the_transaction_fails_the_whole_group(engine: Engine) -> None:
    """SQLite rolls the whole transaction back on some I/O errors: the changes before it
    are gone, so none of the group may be acknowledged, and none after it may commit alone."""
    def loses_transaction(conn: Connection) -> None:
        cursor = conn.connection.cursor()
        cursor.execute("ROLLBACK")  # what SQLite does itself on SQLITE_FULL mid-transaction
        cursor.close()
        raise OSError("database or disk is full")

    outcomes = _in_one_group(GroupCommit(engine), _entry("first"),
                             [_entry("a"), loses_transaction, _entry("b")])
    assert [kind for kind, _ in outcomes] == ["ok", "error", "error", "error"]
    assert all(isinstance(error, OSError) for _, error in outcomes[1:])
    assert _stored(engine) == {"first"}


def test_a_change_that_ends_the_transaction_without_raising_fails_the_group(
        engine: Engine) -> None:
    def commits_behind_our_back(conn: Connection) -> None:
        cursor = conn.connection.cursor()
        cursor.execute("ROLLBACK")
        cursor.close()

    outcomes = _in_one_group(GroupCommit(engine), _entry("first"),
                             [_entry("a"), commits_behind_our_back, _entry("b")])
    assert [kind for kind, _ in outcomes] == ["ok", "error", "error", "error"]
    assert _stored(engine) == {"first"}


def test_acknowledged_changes_are_committed_and_after_commit_runs_in_order_under_the_lock(
        engine: Engine) -> None:
    lock = threading.RLock()
    seen: list[tuple[str, bool, bool]] = []

    def note(name: str) -> None:
        holds = lock._is_owned()  # type: ignore[attr-defined]
        with engine.connect() as other:  # another connection sees it: committed
            visible = other.execute(select(system_entries.c.name).where(
                system_entries.c.name == name)).first() is not None
        seen.append((name, holds, visible))

    group = GroupCommit(engine, lock=lock)
    names = [f"n{i}" for i in range(5)]
    threads = [threading.Thread(target=group.run, args=(_entry(n),),
                                kwargs={"after_commit": note}) for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(seen) == [(n, True, True) for n in names]


def test_a_change_cannot_submit_another(engine: Engine) -> None:
    group = GroupCommit(engine)

    def nested(conn: Connection) -> str:
        return group.run(_entry("inner"))

    with pytest.raises(RuntimeError, match="cannot submit another change"):
        group.run(nested)
    assert _stored(engine) == set()


def test_audit_records_of_a_rolled_back_change_leave_no_gap_in_the_chain(
        engine: Engine) -> None:
    """Each change appends its record inside its savepoint: an undone change takes its
    record and its move of the chain head with it, and the next change links on."""
    ensure_head(engine)
    chain = AuditChain(engine)

    def audited(name: str, fail: bool = False) -> Callable[[Connection], str]:
        def change(conn: Connection) -> str:
            _entry(name)(conn)
            chain.append(conn, [{"time": 1.0, "request_id": name, "identity": None,
                                 "operation": "create", "key": name, "key_version": 1,
                                 "outcome": "ok", "error_code": None, "client": None,
                                 "detail": None, "context": None}])
            if fail:
                raise ValueError("refused after its record")
            return name
        return change

    outcomes = _in_one_group(GroupCommit(engine), audited("first"),
                             [audited("a"), audited("b", fail=True), audited("c")])
    assert [kind for kind, _ in outcomes] == ["ok", "ok", "error", "ok"]
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(
            select(audit_records).order_by(audit_records.c.id)).mappings()]
        head = read_head(conn)
        if engine.dialect.name == "sqlite":
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    assert [r["key"] for r in rows] == ["first", "a", "c"]
    previous = GENESIS
    for expected_place, row in enumerate(rows, start=1):
        # The place in the chain (``seq``) has no gap; the listing id may (a PostgreSQL
        # sequence does not take back the id of a rolled-back insert).
        assert row["seq"] == expected_place
        previous = link(previous, row)
        assert row["chain_hash"] == previous
    assert head is not None and (head.seq, head.chain_hash) == (3, previous)
