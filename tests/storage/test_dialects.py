"""The schema stays dialect-neutral: it compiles for PostgreSQL as well as SQLite.

No PostgreSQL server is needed to catch a SQLite-only type or construct: the
DDL and the hot-path audit insert are compiled for both dialects.
"""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateIndex, CreateTable

from keyquorum.storage.schema import audit_records, metadata


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()],
                         ids=["sqlite", "postgresql"])
def test_every_table_and_index_compiles(dialect: object) -> None:
    for table in metadata.sorted_tables:
        ddl = str(CreateTable(table).compile(dialect=dialect))  # type: ignore[arg-type]
        assert table.name in ddl
        for index in table.indexes:
            assert index.name in str(CreateIndex(index).compile(dialect=dialect))  # type: ignore[arg-type]


def test_audit_ids_are_bigint_on_postgresql() -> None:
    ddl = str(CreateTable(audit_records).compile(dialect=postgresql.dialect()))
    assert "BIGSERIAL" in ddl or "BIGINT" in ddl


def test_the_audit_chain_statements_compile_for_postgresql() -> None:
    from sqlalchemy.dialects import postgresql

    from keyquorum.storage.audit_repo import RecordAppender

    chain = RecordAppender(postgresql.dialect())
    assert "RETURNING audit_head.seq, audit_head.chain_hash" in chain._lock.sql
    assert chain._insert.sql.startswith("INSERT INTO audit_records")
