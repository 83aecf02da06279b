"""Background jobs run on one node at a time across nodes sharing one PostgreSQL.

Two nodes (in process, each its own core, scheduler and clock) on one database: a
due rotation is done once however the nodes' ticks meet; while another session holds
the job lock a node skips the jobs; when that holder dies (its session killed, as a
node's would end), the next tick of a surviving node does them.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from cluster_support import database_of
from inprocess_server import InProcessServer
from keyquorum.storage.job_lock import lock_id
from pg_support import PostgresCluster

DAY = 86400.0


@pytest.fixture
def nodes(two_nodes: tuple[InProcessServer, ...]) -> tuple[InProcessServer, ...]:
    return two_nodes


def due_key(node: InProcessServer, name: str) -> None:
    made = node.client().post("/v1/keys", json={"name": name, "spec": "aes-256-gcm",
                                                "rotation_period": "1d"})
    assert made.status_code == 200, made.text


def primary(node: InProcessServer, name: str) -> int:
    return int(node.client().get(f"/v1/keys/{name}").json()["primary_version"])


def tick_after(node: InProcessServer, seconds: float) -> dict[str, Any]:
    """Move the node's test clock and run its scheduler once."""
    return node.advance_clock(seconds)


def test_two_nodes_ticking_together_rotate_a_due_key_once(
        nodes: tuple[InProcessServer, ...]) -> None:
    a, b = nodes
    due_key(a, "jobs/k")
    results: list[dict[str, Any]] = []
    start = threading.Barrier(2)

    def tick(node: InProcessServer) -> None:
        start.wait()
        results.append(tick_after(node, 2 * DAY))

    threads = [threading.Thread(target=tick, args=(node,)) for node in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(len(r["rotated"]) for r in results) == [0, 1]
    assert primary(a, "jobs/k") == primary(b, "jobs/k") == 2


def test_a_node_skips_the_jobs_while_another_holds_them_and_takes_over_when_it_dies(
        nodes: tuple[InProcessServer, ...], postgres: PostgresCluster) -> None:
    a, b = nodes
    due_key(a, "jobs/held")
    holder = postgres.admin(database_of(a))  # another node, in the middle of the jobs
    try:
        assert holder.execute("SELECT pg_try_advisory_lock(%s)",
                              (lock_id("scheduler"),)).fetchone() == (True,)
        assert tick_after(b, 2 * DAY)["rotated"] == []
        assert primary(b, "jobs/held") == 1
        pid = holder.execute("SELECT pg_backend_pid()").fetchone()[0]
        with postgres.admin() as admin:  # the holder dies: its session ends with it
            # (wait_for: the backend has exited, its locks released, when this returns)
            admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,))
    finally:
        holder.close()
    assert tick_after(b, 1)["rotated"] == ["jobs/held"]
    assert primary(a, "jobs/held") == 2
