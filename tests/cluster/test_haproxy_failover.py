"""Through a real HAProxy in front of three nodes, killing one fails only the requests
it had in flight.

HAProxy (tests/haproxy_support.py: health checks on ``GET /v1/sys/health`` every
0.2 s, connection failures redispatched, no request resent once written) balances
three keyquorum server processes on one PostgreSQL. Eight client threads drive
encrypts and key creations through it; node 2 is SIGKILLed. A client can lose at
most the one request it had in flight on node 2 at that moment: so no more failures
than client threads, each in flight at the kill; every request started
after the victim was reaped succeeds, on the other nodes, and everything acknowledged
is readable through the balancer. (Measured: 3-4 failures of about 1,000 requests,
each started within 20 ms before the kill; the victim took 17-34 ms to be reaped.)
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from cluster_load import Load, create_load_key, unreadable
from haproxy_support import HAProxy, find_haproxy
from pg_support import PostgresCluster
from process_cluster import ProcessCluster

pytestmark = pytest.mark.postgresql

CLIENTS = 8
BEFORE, AFTER = 1.5, 1.5
"""Seconds of load before the kill and after HAProxy marked the node down."""


def test_through_haproxy_a_killed_node_fails_only_its_in_flight_requests(
        postgres: PostgresCluster, tmp_path: Path) -> None:
    if find_haproxy() is None:  # as for PostgreSQL: CI must have it (scripts/test installs it)
        message = "no haproxy (Debian: apt-get install haproxy; scripts/test installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with ProcessCluster(postgres, tmp_path) as cluster, \
            HAProxy(tmp_path / "haproxy", [(n.name, n.port) for n in cluster.nodes]) as lb:
        with cluster.client(0) as http:
            create_load_key(http)
        victim = cluster.nodes[1]
        with Load([("lb", lb.addr)], cluster.root_token, threads=CLIENTS) as load:
            time.sleep(BEFORE)
            killed_at = time.monotonic()
            victim.kill()
            dead_at = time.monotonic()  # reaped: from here on nothing reaches it
            states = lb.wait_states(lambda s: s.get(victim.name, "").startswith("DOWN"), 5.0)
            down_at = time.monotonic()
            time.sleep(AFTER)
        outcomes = load.outcomes

        failed = [o for o in outcomes if not o.ok]
        assert len(failed) <= CLIENTS, failed
        assert all(o.started < dead_at and o.ended > killed_at for o in failed), failed
        after = [o for o in outcomes if o.started > dead_at]
        assert after and all(o.ok for o in after)
        assert sum(o.started > down_at for o in after) > 0
        assert states["node-1"] == states["node-3"] == "UP"
        with httpx.Client(base_url=lb.addr, timeout=30,
                          headers={"Authorization": f"Bearer {cluster.root_token}"}) as http:
            assert unreadable(http, outcomes) == []
