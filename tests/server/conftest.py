"""Fixtures shared by the server tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kq_support import ServerProcess, free_port


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(data_dir=tmp_path / "data", port=free_port(), test_clock=False,
                           extra_args=["--workers", "2"])
    try:  # stopped even when start fails
        server.start()
        yield server
    finally:
        server.stop()
