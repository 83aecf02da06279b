"""A full or failing disk is a stable 503 ``storage_unavailable``, never a 500.

Review F3d: a key create or rotate whose transaction met SQLITE_FULL was logged as
``unexpected OperationalError`` and answered 500 whenever the refusal's own audit
record still fitted. Here the store sits on a real filesystem that fills up (a small
tmpfs; mounting one needs root, so those tests skip elsewhere), and the recogniser
is checked against real driver errors.
"""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import IntegrityError, OperationalError

from keyquorum.api.errors import translate
from keyquorum.config import Settings
from keyquorum.errors import StorageUnavailable
from keyquorum.runtime.wiring import build_core
from keyquorum.service.context import RequestContext
from keyquorum.service.lifecycle import KeyLifecycle, NewKey
from keyquorum.storage import errors as storage_errors
from keyquorum.storage import keys_repo
from keyquorum.storage.errors import is_storage_failure, storage_failure
from kq_inprocess import InProcess, inprocess_app

# -- the recogniser, on real driver errors ---------------------------------------------------


def _sqlite_full() -> OperationalError:
    """A real SQLITE_FULL from pysqlite, as SQLAlchemy raises it."""
    engine = create_engine("sqlite://")
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (b BLOB)"))
            conn.execute(text("PRAGMA max_page_count = 4"))
            for _ in range(10):
                conn.execute(text("INSERT INTO t VALUES (zeroblob(8000))"))
    except OperationalError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError("the page limit did not fill the database")


def test_sqlite_full_is_a_storage_failure_and_translates_to_storage_unavailable() -> None:
    exc = _sqlite_full()
    assert storage_failure(exc) == "SQLITE_FULL"
    assert storage_failure(exc.orig) == "SQLITE_FULL"  # the driver's own exception too
    error = translate(exc)
    assert isinstance(error, StorageUnavailable)
    assert (error.status, error.code) == (503, "storage_unavailable")
    assert error.message == "storage is full or failing; nothing was changed"


def test_a_write_past_the_file_size_limit_is_a_disk_io_error_recognised(tmp_path: Path) -> None:
    # RLIMIT_FSIZE makes write() fail with EFBIG, which SQLite reports as SQLITE_IOERR_WRITE
    # ("disk I/O error"). In a child process: the limit would hit this one's files too.
    script = textwrap.dedent(f"""
        import resource, signal
        from sqlalchemy import create_engine, text
        from sqlalchemy.exc import OperationalError
        from keyquorum.storage.errors import storage_failure
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        engine = create_engine("sqlite:///{tmp_path / 'io.db'}")
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (b BLOB)"))
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, resource.RLIM_INFINITY))
        try:
            for _ in range(100):
                with engine.begin() as conn:
                    conn.execute(text("INSERT INTO t VALUES (zeroblob(8000))"))
        except OperationalError as exc:
            print(exc.orig.sqlite_errorname, storage_failure(exc))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.split() == ["SQLITE_IOERR_WRITE", "SQLITE_IOERR_WRITE"]


class _PgError(Exception):
    """Shaped like psycopg 3's errors (``sqlstate``) without needing psycopg installed."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"SQLSTATE {sqlstate}")
        self.sqlstate = sqlstate


class _Pg2Error(Exception):
    """Shaped like psycopg2's errors (``pgcode``)."""

    def __init__(self, pgcode: str) -> None:
        super().__init__(f"pgcode {pgcode}")
        self.pgcode = pgcode


@pytest.mark.parametrize(("driver_error", "reason"), [
    (_PgError("53100"), "SQLSTATE 53100 disk_full"),
    (_PgError("58030"), "SQLSTATE 58030 io_error"),
    (_Pg2Error("53100"), "SQLSTATE 53100 disk_full"),
    (_PgError("40001"), None),  # serialization failure: a retry, not a full disk
    (_PgError("23505"), None),  # unique violation
])
def test_postgresql_disk_full_and_io_error_are_known_by_sqlstate(driver_error: Exception,
                                                                 reason: str | None) -> None:
    wrapped = OperationalError("INSERT ...", {}, driver_error)
    assert storage_failure(wrapped) == reason
    assert storage_failure(driver_error) == reason


def test_other_database_errors_are_not_storage_failures(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (k TEXT PRIMARY KEY)"))
        conn.execute(text("INSERT INTO t VALUES ('a')"))
    with pytest.raises(IntegrityError) as duplicate, engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES ('a')"))
    with pytest.raises(OperationalError) as syntax, engine.begin() as conn:
        conn.execute(text("INSERT INTO nowhere VALUES (1)"))
    engine.dispose()
    assert not is_storage_failure(duplicate.value)
    assert not is_storage_failure(syntax.value)
    assert translate(syntax.value) is None  # still unexpected: a bug, not an outage
    # Words alone do not make a storage failure: only a database error's are read.
    assert not is_storage_failure(ValueError("database or disk is full"))
    assert not is_storage_failure(OSError(errno.ENOSPC, "No space left on device"))


def test_a_failing_disk_is_logged_once_per_interval_not_once_per_request(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    notice = type(storage_errors.note_storage_failure)()
    with caplog.at_level(logging.WARNING, logger="keyquorum.storage.errors"):
        for _ in range(100):
            notice("SQLITE_FULL")
        monkeypatch.setattr(storage_errors, "NOTICE_INTERVAL", 0.0)
        notice("SQLITE_FULL")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("storage is full or failing (SQLITE_FULL)")
    assert lines[1].endswith("(99 more since the last notice)")


# -- a store on a disk that fills up ---------------------------------------------------------


class SmallDisk:
    """A 16 MiB tmpfs: ``fill`` takes every free byte with a filler file, ``free`` gives
    them back."""

    SIZE = "16m"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.filler = root / "filler"

    def fill(self) -> None:
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            for size in (1 << 20, 1 << 16, 4096, 512, 1):
                try:
                    while True:
                        os.write(fd, bytes(size))
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
        finally:
            os.close(fd)

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    root = tmp_path / "disk"
    root.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SmallDisk.SIZE}", "tmpfs",
                              str(root)], capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip("mounting a small tmpfs needs root: "
                    + mounted.stderr.decode(errors="replace").strip())
    try:
        yield SmallDisk(root)
    finally:
        if subprocess.run(["umount", str(root)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(root)], check=False)


def _fill(disk: SmallDisk, engine: Any) -> None:
    """Fill the disk after moving the WAL into the database and truncating it, so the next
    write needs new space (a WAL keeps its size, and SQLite would reuse it)."""
    with engine.connect() as conn:
        busy, _log, _done = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
    assert busy == 0
    disk.fill()


def _versions(engine: Any, name: str) -> list[int] | None:
    with engine.connect() as conn:
        key = keys_repo.get_key(conn, name=name)
    return None if key is None else sorted(v.version for v in key.versions)


def _integrity(engine: Any) -> str:
    with engine.connect() as conn:
        return str(conn.exec_driver_sql("PRAGMA integrity_check").scalar())


def test_create_and_rotate_on_a_full_disk_change_nothing_and_work_once_freed(
        small_disk: SmallDisk) -> None:
    (small_disk.root / "data").mkdir()
    core = build_core(Settings(data_dir=small_disk.root / "data"))
    shares = core.init(3, 2)["shares"]
    for share in shares[:2]:
        core.unseal(share)
    lifecycle = KeyLifecycle(core)
    ctx = RequestContext(request_id="t", client=None)
    ctx.identity = core.tokens.create_root(created_by="t")[1]
    lifecycle.create(ctx, NewKey("disk/kept", "aes-256-gcm"))
    try:
        _fill(small_disk, core.engine)

        with pytest.raises(Exception) as create_failed:
            lifecycle.create(ctx, NewKey("disk/new", "aes-256-gcm"))
        assert storage_failure(create_failed.value) == "SQLITE_FULL"
        assert isinstance(translate(create_failed.value), StorageUnavailable)
        with pytest.raises(Exception) as rotate_failed:
            lifecycle.rotate(ctx, "disk/kept")
        assert isinstance(translate(rotate_failed.value), StorageUnavailable)

        # Nothing half-written: no key, no new version, in storage or in the cache.
        assert _versions(core.engine, "disk/new") is None
        assert _versions(core.engine, "disk/kept") == [1]
        assert core.keys.get("disk/kept").key.primary_version == 1

        small_disk.free()
        assert lifecycle.create(ctx, NewKey("disk/new", "aes-256-gcm")).name \
            == "disk/new"
        assert lifecycle.rotate(ctx, "disk/kept").primary_version == 2
        assert _versions(core.engine, "disk/kept") == [1, 2]
        assert _integrity(core.engine) == "ok"
    finally:
        small_disk.free()
        core.seal()
        core.engine.dispose()


@pytest.fixture
def full_disk_app(small_disk: SmallDisk, caplog: pytest.LogCaptureFixture
                  ) -> Iterator[tuple[InProcess, SmallDisk]]:
    caplog.set_level(logging.INFO)
    with inprocess_app(small_disk.root / "data") as kq:
        made = kq.http.post("/v1/keys", json={"name": "disk/kept", "spec": "aes-256-gcm"})
        assert made.status_code == 200, made.text
        try:
            yield kq, small_disk
        finally:
            small_disk.free()
    unexpected = [r.getMessage() for r in caplog.records if "unexpected" in r.getMessage()]
    assert unexpected == []


def _error_code(answer: Any) -> str:
    assert answer.status_code == 503, answer.text
    return str(answer.json()["error"]["code"])


def test_momentarily_full_disk_answers_503_storage_unavailable_and_audits_the_refusal(
        full_disk_app: tuple[InProcess, SmallDisk]) -> None:
    """The disk is full while the key's transaction commits and has room again when the
    refusal is audited (another process's file went away): the reviewer's 500 case."""
    kq, disk = full_disk_app
    frees_after_failure = []

    def free_after_storage_failure(context: Any) -> None:
        if is_storage_failure(context.original_exception) and not frees_after_failure:
            frees_after_failure.append(context.original_exception)
            disk.free()

    event.listen(kq.core.engine, "handle_error", free_after_storage_failure)
    _fill(disk, kq.core.engine)
    created = kq.http.post("/v1/keys", json={"name": "disk/new", "spec": "aes-256-gcm"})
    assert _error_code(created) == "storage_unavailable"
    assert created.json()["error"]["message"] == "storage is full or failing; nothing was changed"
    assert len(frees_after_failure) == 1

    frees_after_failure.clear()
    _fill(disk, kq.core.engine)
    rotated = kq.http.post("/v1/keys/disk/kept/rotate", json={})
    assert _error_code(rotated) == "storage_unavailable"
    event.remove(kq.core.engine, "handle_error", free_after_storage_failure)

    assert kq.http.get("/v1/keys/disk/new").status_code == 404
    kept = kq.http.get("/v1/keys/disk/kept").json()
    assert (kept["primary_version"], len(kept["versions"])) == (1, 1)
    refusals = kq.http.get("/v1/audit", params={"outcome": "error", "limit": 10}).json()
    assert [(r["operation"], r["key"], r["error_code"]) for r in refusals["records"]
            if r["operation"] in ("create", "rotate")] == [
        ("rotate", "disk/kept", "storage_unavailable"),
        ("create", "disk/new", "storage_unavailable")]


def test_disk_that_stays_full_answers_503_changes_nothing_and_recovers_when_freed(
        full_disk_app: tuple[InProcess, SmallDisk]) -> None:
    kq, disk = full_disk_app
    _fill(disk, kq.core.engine)
    for _ in range(3):
        created = kq.http.post("/v1/keys", json={"name": "disk/new", "spec": "aes-256-gcm"})
        rotated = kq.http.post("/v1/keys/disk/kept/rotate", json={})
        # storage_unavailable when the refusal's audit record still finds room, else the
        # refusal itself cannot be recorded and the runner answers audit_unavailable.
        assert _error_code(created) in {"storage_unavailable", "audit_unavailable"}
        assert _error_code(rotated) in {"storage_unavailable", "audit_unavailable"}
    # Read from storage directly: while the disk is full even a read's audit record has
    # no room, so every answer is a 503.
    assert _versions(kq.core.engine, "disk/new") is None
    assert _versions(kq.core.engine, "disk/kept") == [1]

    disk.free()
    assert kq.http.get("/v1/keys/disk/new").status_code == 404
    assert len(kq.http.get("/v1/keys/disk/kept").json()["versions"]) == 1
    created = kq.http.post("/v1/keys", json={"name": "disk/new", "spec": "aes-256-gcm"})
    assert created.status_code == 200, created.text
    rotated = kq.http.post("/v1/keys/disk/kept/rotate", json={})
    assert rotated.status_code == 200 and rotated.json()["primary_version"] == 2
    assert kq.http.post("/v1/audit/verify", json={}).json()["ok"] is True
    assert _integrity(kq.core.engine) == "ok"
