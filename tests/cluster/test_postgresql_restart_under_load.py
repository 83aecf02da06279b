"""PostgreSQL stopped for seconds and started again under load: the nodes fail fast and
come back by themselves, with nothing half-written.

Three keyquorum server processes on one PostgreSQL, two client threads on each
encrypting and creating keys. PostgreSQL is stopped (``pg_ctl stop -m fast``: its
sessions are ended, as in a restart or a failover) for a few seconds, then started
again. While it is away every request is answered, within ``FAIL_FAST``, either
200 (a key already cached whose audit record still got through, say) or 503
``storage_unavailable``: never a 500, never another code, never a hang. When it is
back each node serves again within ``RECOVERY`` without a restart or an unseal;
every acknowledged ciphertext decrypts, every acknowledged key is there, and the
audit chain verifies on every node.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cluster_load import Load, create_load_key, unreadable
from pg_support import PostgresCluster
from process_cluster import ProcessCluster

pytestmark = pytest.mark.postgresql

DOWN = 3.0
"""Seconds PostgreSQL stays stopped."""
FAIL_FAST = 5.0
"""The longest any answer may take while the database is away (the pool refuses at
once when nothing listens; 5 s is its connect timeout, the stated bound)."""
RECOVERY = 15.0
"""Seconds after PostgreSQL is back within which every node must serve again."""


def test_postgresql_restarted_under_load_fails_fast_with_503_and_the_nodes_recover_whole(
        postgres: PostgresCluster, tmp_path: Path) -> None:
    with ProcessCluster(postgres, tmp_path) as cluster:
        with cluster.client(0) as http:
            create_load_key(http)
        targets = [(node.name, node.addr) for node in cluster.nodes]
        with Load(targets, cluster.root_token, timeout=FAIL_FAST + 10) as load:
            time.sleep(1.0)
            stopped_at = time.monotonic()
            postgres.stop()
            try:
                time.sleep(DOWN)
            finally:
                postgres.start()
            back_at = time.monotonic()
            recovered = wait_for_every_target_to_serve(load, back_at, len(targets))
            time.sleep(0.5)
        outcomes = load.outcomes

        during = [o for o in outcomes if stopped_at < o.started < back_at]
        assert any(o.status == 503 for o in during), "nothing failed while it was down"
        answers = {(o.status, o.code) for o in outcomes}
        assert answers <= {(200, None), (503, "storage_unavailable")}, answers
        slowest = max(o.elapsed for o in outcomes)
        assert slowest < FAIL_FAST, slowest
        assert recovered < RECOVERY, cluster.logs()

        for index in range(len(cluster.nodes)):
            with cluster.client(index) as http:
                assert unreadable(http, outcomes) == [], cluster.nodes[index].name
                verified = http.post("/v1/audit/verify", json={})
                assert verified.status_code == 200, verified.text
                assert verified.json()["ok"] is True, verified.json()


def wait_for_every_target_to_serve(load: Load, since: float, targets: int) -> float:
    """Seconds after ``since`` until every target has answered a request started after
    it with 200 (gives up after ``RECOVERY``)."""
    while time.monotonic() - since < RECOVERY:
        served = {o.target for o in load.snapshot() if o.ok and o.started > since}
        if len(served) == targets:
            break
        time.sleep(0.05)
    return time.monotonic() - since
