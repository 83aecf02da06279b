"""A node SIGKILLed in the middle of load loses nothing it acknowledged; the others go on.

Three keyquorum server processes on one PostgreSQL (tests/process_cluster.py), two
client threads on each encrypting and creating keys. Node 2 is killed with SIGKILL
(no shutdown: its usage blocks, queued audit records and open transactions die with
it). Afterwards, on each surviving node, every ciphertext any node acknowledged
(the victim's included) decrypts to its plaintext, every key whose creation was
acknowledged is there, and the audit chain verifies. The survivors answered every
request sent to them, before and after the kill.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cluster_load import Load, create_load_key, unreadable
from pg_support import PostgresCluster
from process_cluster import ProcessCluster

pytestmark = pytest.mark.postgresql

BEFORE, AFTER = 1.5, 1.5
"""Seconds of load before the kill and after it."""


def test_a_node_killed_under_load_loses_no_acknowledged_write_and_the_others_keep_serving(
        postgres: PostgresCluster, tmp_path: Path) -> None:
    with ProcessCluster(postgres, tmp_path) as cluster:
        with cluster.client(0) as http:
            create_load_key(http)
        victim = cluster.nodes[1]
        survivors = [0, 2]
        targets = [(node.name, node.addr) for node in cluster.nodes]
        with Load(targets, cluster.root_token) as load:
            time.sleep(BEFORE)
            killed_at = time.monotonic()
            victim.kill()
            time.sleep(AFTER)
        outcomes = load.outcomes

        on_victim = [o for o in outcomes if o.target == victim.name]
        on_survivors = [o for o in outcomes if o.target != victim.name]
        assert any(o.ok for o in on_victim), "the victim served nothing before the kill"
        assert any(o.ok and o.started > killed_at for o in on_survivors)
        failed = [o for o in on_survivors if not o.ok]
        assert not failed, (failed[:5], cluster.logs())
        # The victim either answered or went away: never an error answer.
        assert {o.status for o in on_victim} <= {200, None}
        assert all(o.status is None for o in on_victim if o.started > killed_at)

        for index in survivors:
            with cluster.client(index) as http:
                assert unreadable(http, outcomes) == [], cluster.nodes[index].name
                verified = http.post("/v1/audit/verify", json={})
                assert verified.status_code == 200, verified.text
                assert verified.json()["ok"] is True, verified.json()
