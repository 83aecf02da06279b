"""The embedded store opens durable (WAL, synchronous=FULL) and migrates idempotently."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text

from keyquorum.storage.engine import alembic_config, migrate, open_engine


def _head(engine: object) -> str:
    """The one head of the migrations (engineers add revisions concurrently)."""
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(alembic_config(engine)).get_heads()  # type: ignore[arg-type]
    assert len(heads) == 1, heads
    return str(heads[0])


def test_sqlite_is_wal_with_full_sync_and_migrations_are_idempotent(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'kq.db'}")
    migrate(engine)
    migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() \
            == _head(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"keys", "key_versions", "tokens", "policies", "audit_records",
            "system_entries", "audit_head", "audit_checkpoints", "approvals", "custodians",
            "custodian_challenges"} <= tables


def test_migrations_build_exactly_the_declared_schema(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from keyquorum.storage.schema import metadata

    engine = open_engine(f"sqlite:///{tmp_path / 'kq.db'}")
    migrate(engine)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []
