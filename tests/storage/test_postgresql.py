"""PostgreSQL as the store: the URL, the password's sources, the schema, lost connections.

Against the real PostgreSQL the tests start (``pg_support``): migrations build the
declared schema, the password is read from where the operator put it (and never
shows), and a refused or ended connection is recognised as a storage failure.
(A server on PostgreSQL, and a database that goes away under it:
``tests/server/test_postgresql_server.py``.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import OperationalError

from keyquorum.storage.engine import migrate, open_engine
from keyquorum.storage.errors import UNREACHABLE, storage_failure
from keyquorum.storage.postgres import PASSWORD_ENV, check_database_url, engine_url
from pg_support import OWNER, PostgresCluster

# -- the URL ------------------------------------------------------------------------------


def test_postgresql_urls_run_on_psycopg3_and_other_drivers_are_refused() -> None:
    assert engine_url("postgresql://kq@db.internal/keys").drivername == "postgresql+psycopg"
    assert engine_url("postgres://kq@db.internal/keys").drivername == "postgresql+psycopg"
    with pytest.raises(ValueError, match="not postgresql\\+psycopg2"):
        engine_url("postgresql+psycopg2://kq@db/keys")
    with pytest.raises(ValueError, match="must name a database"):
        engine_url("postgresql://kq@db.internal")
    with pytest.raises(ValueError, match="must be postgresql://"):
        check_database_url("mysql://kq:hunter2@db/keys")


def test_a_refused_url_never_repeats_its_password() -> None:
    for url in ("mysql://kq:hunter2@db/keys", "postgresql+psycopg2://kq:hunter2@db/keys",
                "postgresql://kq:hunter2@db.internal"):
        with pytest.raises(ValueError) as refused:
            check_database_url(url)
        assert "hunter2" not in str(refused.value)


# -- on a real PostgreSQL -----------------------------------------------------------------


@pytest.fixture
def database(postgres: PostgresCluster) -> Iterator[str]:
    """An empty database (no table) of this test's own, owned by the keyquorum role."""
    name = postgres.create_database(empty=True)
    try:
        yield name
    finally:
        postgres.drop_database(name)


def test_migrations_build_the_declared_schema_on_postgresql_and_are_idempotent(
        postgres: PostgresCluster, database: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from keyquorum.storage.schema import metadata

    engine = open_engine(postgres.url(database), password_file=postgres.password_file)
    try:
        # Two nodes starting at once: one migrates, the other waits for it, neither fails.
        errors: list[BaseException] = []

        def start() -> None:
            try:
                migrate(engine)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=start) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        migrate(engine)
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
            owner = conn.execute(text("SELECT tableowner FROM pg_tables "
                                      "WHERE tablename = 'keys'")).scalar()
        assert owner == OWNER  # made by keyquorum's own role, no superuser
        assert {"keys", "audit_records", "audit_head", "alembic_version"} <= set(
            inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _can_connect(engine: Engine) -> bool:
    with engine.connect() as conn:
        return bool(conn.execute(text("SELECT true")).scalar())


def test_the_password_file_is_read_again_for_every_new_connection(
        postgres: PostgresCluster, database: str, tmp_path: Path) -> None:
    password_file = tmp_path / "db.password"
    password_file.write_text(postgres.password + "\n")
    engine = open_engine(postgres.url(database), password_file=password_file)
    new_password = "rotated-" + postgres.password
    try:
        assert _can_connect(engine)
        with postgres.admin() as admin:
            admin.execute(f"ALTER ROLE {OWNER} PASSWORD '{new_password}'")
        password_file.write_text(new_password + "\n")
        engine.dispose()  # the next connection is a new one: it reads the file again
        assert _can_connect(engine)
    finally:
        engine.dispose()
        with postgres.admin() as admin:
            admin.execute(f"ALTER ROLE {OWNER} PASSWORD '{postgres.password}'")


def test_the_password_can_come_from_the_environment(
        postgres: PostgresCluster, database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    without = open_engine(postgres.url(database))
    try:
        with pytest.raises(OperationalError):  # no password from anywhere: refused
            _can_connect(without)
    finally:
        without.dispose()
    monkeypatch.setenv(PASSWORD_ENV, postgres.password)
    engine = open_engine(postgres.url(database))
    try:
        assert _can_connect(engine)
    finally:
        engine.dispose()


def test_a_wrong_password_is_refused_without_showing_it(
        postgres: PostgresCluster, database: str, tmp_path: Path) -> None:
    # The file wins over the (right) password in the environment.
    password_file = tmp_path / "wrong.password"
    password_file.write_text("not-the-password-1234\n")
    engine = open_engine(postgres.url(database), password_file=password_file)
    try:
        with pytest.raises(OperationalError) as refused:
            _can_connect(engine)
    finally:
        engine.dispose()
    assert "password authentication failed" in str(refused.value)
    assert "not-the-password-1234" not in str(refused.value)
    assert "not-the-password-1234" not in repr(engine)


def test_an_empty_or_missing_password_file_is_refused_at_start(
        postgres: PostgresCluster, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(ValueError, match="is empty"):
        open_engine(postgres.url("x"), password_file=empty)
    with pytest.raises(ValueError, match="cannot read database_password_file"):
        open_engine(postgres.url("x"), password_file=tmp_path / "absent")


def test_connection_failures_are_storage_failures(postgres: PostgresCluster,
                                                  database: str, tmp_path: Path) -> None:
    # Nothing listens here: libpq's own failure, with no SQLSTATE.
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect(host=str(tmp_path), port=5432, dbname="x", connect_timeout=2)
    assert refused.value.sqlstate is None
    assert storage_failure(refused.value) == UNREACHABLE
    # A session the server ends (a restart, a failover): SQLSTATE 57P01.
    engine = open_engine(postgres.url(database), password_file=postgres.password_file)
    try:
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            with postgres.admin() as admin:
                admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,))
            with pytest.raises(OperationalError) as ended:
                conn.execute(text("SELECT 1"))
        assert storage_failure(ended.value) == "SQLSTATE 57P01 admin_shutdown"
        assert _can_connect(engine)  # the pool let the dead connection go
    finally:
        engine.dispose()
