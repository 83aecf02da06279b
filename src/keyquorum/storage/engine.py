"""Open the store: an SQLAlchemy engine with durable settings, migrated to head.

SQLite is the embedded default: WAL journal (readers never block the writer)
and ``synchronous=FULL`` (a committed transaction survives power loss, not just
a process crash). PostgreSQL is the same schema and the same migrations behind a
``postgresql://`` URL (``storage/postgres.py``: driver, password, pool).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import QueuePool

from keyquorum.storage.postgres import is_postgresql, open_postgresql

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
MIGRATION_LOCK = 0x6B71_6D69_6772  # "kqmigr": the advisory lock migrations run under


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'keyquorum.db'}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


def open_engine(url: str, *, password_file: Path | None = None) -> Engine:
    """Create the engine for ``url``: SQLite with its durability pragmas on every
    connection, or PostgreSQL (``password_file``: where its password is, if anywhere)."""
    if is_postgresql(url):
        return open_postgresql(url, password_file=password_file)
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            poolclass=QueuePool,
            pool_size=8,
            max_overflow=8,
            connect_args={"check_same_thread": False, "timeout": 15},
            hide_parameters=True,  # never let a bound value (token hash, blob) reach a log
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    raise ValueError("database_url must be sqlite:///PATH or postgresql://HOST/DBNAME")


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``, the newest by default (idempotent).

    A restore stops at the revision its backup was made at, inserts the rows, then
    goes on to the newest, so data migrations run on restored rows as on live ones.
    """
    with engine.begin() as connection:
        migrate_on(connection, revision)


def migrate_on(connection: Connection, revision: str = "head") -> None:
    """``migrate`` inside the caller's transaction (on PostgreSQL, a failure later in it
    takes the new tables away again: its DDL is transactional)."""
    if connection.dialect.name == "postgresql":
        # Nodes starting together on one database: one migrates, the others wait here
        # and then find the schema at head.
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
    config = alembic_config(connection.engine)
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
