"""Several keyquorum nodes in this process on one PostgreSQL database, for cluster tests.

Each node is an ``InProcessServer``: the real app on a core of its own (its own
caches, change feed, scheduler and test clock, as a separate host would have), all
sharing one database of the PostgreSQL the tests start. The first node initializes
the store; every node is unsealed with shares (so each opens the barrier itself,
as nodes unsealed by custodians do) and carries the root token.

Schedulers do not run on their own timer (``run_scheduler=False``): a test moves a
node's clock and runs its scheduler once with ``advance_clock``, so what a tick does
is decided by the test, not by timing.

Use ``cluster_nodes`` as a context manager, or the ``two_nodes`` fixture
(tests/server/conftest.py) for the common case. Three-node tests of server *processes*
(HAProxy, SIGKILL) use ``kq_support`` instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from inprocess_server import InProcessServer
from pg_support import PostgresCluster


@contextmanager
def cluster_nodes(postgres: PostgresCluster, base: Path, count: int = 2, *,
                  config: dict[str, Any] | None = None
                  ) -> Iterator[tuple[InProcessServer, ...]]:
    """``count`` started, unsealed nodes on a new database, dropped afterwards.

    ``config`` is added to every node's settings (as a config file holds them)."""
    database = postgres.create_database()
    settings = {**postgres.settings_for(database), **(config or {})}
    made: list[InProcessServer] = []
    try:
        for number in range(count):
            node = InProcessServer(base / f"node-{chr(ord('a') + number)}", config=settings,
                                   run_scheduler=False)
            made.append(node)
            node.start()
        made[0].init()
        made[0].unseal()
        for node in made[1:]:
            node.unseal(made[0].shares[1:])
            node.root_token = made[0].root_token
            node.shares = made[0].shares
        yield tuple(made)
    finally:
        for node in made:
            node.stop()
        postgres.drop_database(database)


def database_of(node: InProcessServer) -> str:
    """The name of the database ``node`` is on."""
    return str(node.config["database_url"]).split("?")[0].rsplit("/", 1)[-1]


def until(condition: Callable[[], bool], limit: float) -> float:
    """Seconds until ``condition`` held (polled every 10 ms); fails past ``limit``."""
    started = time.monotonic()
    while not condition():
        elapsed = time.monotonic() - started
        assert elapsed < limit, f"not within {limit} s"
        time.sleep(0.01)
    return time.monotonic() - started
