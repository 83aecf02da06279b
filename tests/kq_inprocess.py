"""A keyquorum app served in this process, for tests that also reach into its core.

``from kq_inprocess import inprocess_app``: an ``InProcessServer`` (real store built
as the server builds it, the real app, its lifespan running) initialized and
unsealed through its HTTP routes, without the background scheduler; ``http``
carries the root token, ``core`` is the service behind it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from inprocess_server import InProcessServer
from keyquorum.service.core import Core


@dataclass
class InProcess:
    core: Core
    http: httpx.Client  # carries the root token


@contextmanager
def inprocess_app(data_dir: Path, *, test_clock: bool = False) -> Iterator[InProcess]:
    """An initialized (2-of-3), unsealed app on ``data_dir``; sealed and closed after."""
    server = InProcessServer(data_dir, test_clock=test_clock, run_scheduler=False)
    server.start()  # stopped (sealed, closed) below even if init or unseal fails
    try:
        server.init()
        server.unseal()
        assert server.core is not None
        yield InProcess(server.core, server.client())
    finally:
        server.stop()
