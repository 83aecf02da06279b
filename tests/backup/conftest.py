"""Fixtures shared by the backup tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pg_support import PostgresCluster


@pytest.fixture
def empty_database(postgres: PostgresCluster) -> Iterator[str]:
    """A new PostgreSQL database with no tables (a migration's or a restore's target),
    dropped afterwards."""
    name = postgres.create_database(empty=True)
    try:
        yield name
    finally:
        postgres.drop_database(name)
