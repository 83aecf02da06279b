"""Fixtures shared by the server tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster_support import cluster_nodes
from inprocess_server import InProcessServer
from kq_support import ServerProcess, free_port
from pg_support import PostgresCluster


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(data_dir=tmp_path / "data", port=free_port(), test_clock=False,
                           extra_args=["--workers", "2"])
    try:  # stopped even when start fails
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def two_nodes(postgres: PostgresCluster, tmp_path: Path) -> Iterator[tuple[InProcessServer, ...]]:
    """Two unsealed in-process nodes on one new PostgreSQL database (``cluster_support``)."""
    with cluster_nodes(postgres, tmp_path) as nodes:
        yield nodes
