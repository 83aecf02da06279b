"""The embedded store opens durable (WAL, synchronous=FULL) and migrates idempotently."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text

from keyquorum.storage.engine import migrate, open_engine


def test_sqlite_is_wal_with_full_sync_and_migrations_are_idempotent(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'kq.db'}")
    migrate(engine)
    migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0001"
    tables = set(inspect(engine).get_table_names())
    assert {"keys", "key_versions", "tokens", "policies", "audit_records",
            "system_entries"} <= tables
