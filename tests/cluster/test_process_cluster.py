"""The cluster harness itself: a cluster whose start-up fails half way leaves nothing
running and no database behind (every fault test relies on it, or a failed start
would leave server processes holding ports and PostgreSQL connections)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pg_support import PostgresCluster
from process_cluster import Node, ProcessCluster

pytestmark = pytest.mark.postgresql


class SecondNodeRefusesToStart(ProcessCluster):
    """Node 2's config names a trust key that is not one: that server exits at start."""

    made: str | None = None

    def _enrolled(self, name: str, trust: str) -> Node:
        self.made = self.database
        return super()._enrolled(name, "not-a-key-id")


def test_a_cluster_whose_start_fails_half_way_stops_every_process_and_drops_its_database(
        postgres: PostgresCluster, tmp_path: Path) -> None:
    cluster = SecondNodeRefusesToStart(postgres, tmp_path, size=2)
    with pytest.raises(RuntimeError, match="exited"), cluster:
        pass
    first, second = cluster.nodes
    assert first.process is None and second.process is None  # stopped (and reaped)
    assert first.health() is None  # nothing listens any more
    assert cluster.made is not None
    with postgres.admin() as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                            (cluster.made,)).fetchone() is None
