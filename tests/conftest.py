"""Shared fixtures: a real keyquorum server process on loopback.

The server is started through the `keyquorum` console entry point exactly as an
operator would (``python -m keyquorum server ...``), initialized and unsealed
over real HTTP. Tests that need it are marked ``server``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kq_support import ServerProcess, free_port

__all__ = ["ServerProcess", "free_port"]


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A started, uninitialized, sealed server of this test's own."""
    server = ServerProcess(data_dir=tmp_path / "data", port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def kq_server(fresh_server: ServerProcess) -> ServerProcess:
    """A started, initialized (2-of-3) and unsealed server of this test's own."""
    fresh_server.init()
    fresh_server.unseal()
    return fresh_server


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One initialized, unsealed server shared by a module's tests (faster)."""
    server = ServerProcess(data_dir=tmp_path_factory.mktemp("kq") / "data", port=free_port())
    server.start()
    server.init()
    server.unseal()
    try:
        yield server
    finally:
        server.stop()
