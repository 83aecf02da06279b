"""Fixtures for auth tests: a migrated store, a clock the test moves by hand, and the
policy store and authorizer on them."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from keyquorum.auth.authorizer import Authorizer
from keyquorum.auth.policy_store import PolicyStore


class FakeClock:
    """A clock that stands still until the test advances it."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.time = start

    def now(self) -> float:
        return self.time

    def advance(self, seconds: float) -> None:
        self.time += seconds


@pytest.fixture
def engine(store_engine: Engine) -> Engine:
    """A store at the newest schema (SQLite; PostgreSQL too in a module marked
    ``postgresql``)."""
    return store_engine


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(engine: Engine, clock: FakeClock) -> PolicyStore:
    return PolicyStore(engine, clock)


@pytest.fixture
def authorizer(store: PolicyStore) -> Authorizer:
    return Authorizer(store)
