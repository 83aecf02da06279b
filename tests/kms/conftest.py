"""Fixtures of the KMS tests: one live server per test module, and a root access key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.kms.live import LiveServer

from pg_support import StoreDatabases


@pytest.fixture(scope="module")
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         migrated_store: Path, store_backend: str) -> Iterator[LiveServer]:
    databases = StoreDatabases(request, store_backend)
    server = LiveServer(tmp_path_factory.mktemp("kms") / "data", migrated=migrated_store,
                        **databases.new_settings())
    try:
        server.start()
        yield server
    finally:
        server.stop()
        databases.drop_all()


@pytest.fixture(scope="module")
def root_key(live: LiveServer) -> dict[str, Any]:
    """An access key holding the root policy."""
    return live.access_key(["root"], name="kms-tests")


@pytest.fixture(scope="module")
def kms(live: LiveServer, root_key: dict[str, Any]) -> Any:
    return live.kms(root_key)
