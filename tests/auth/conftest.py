"""Fixtures for auth tests: a migrated SQLite file, a clock the test moves by hand, and
the policy store and authorizer on them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from keyquorum.auth.authorizer import Authorizer
from keyquorum.auth.policy_store import PolicyStore
from keyquorum.storage.engine import migrate, open_engine, sqlite_url


class FakeClock:
    """A clock that stands still until the test advances it."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.time = start

    def now(self) -> float:
        return self.time

    def advance(self, seconds: float) -> None:
        self.time += seconds


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = open_engine(sqlite_url(tmp_path))
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(engine: Engine, clock: FakeClock) -> PolicyStore:
    return PolicyStore(engine, clock)


@pytest.fixture
def authorizer(store: PolicyStore) -> Authorizer:
    return Authorizer(store)
