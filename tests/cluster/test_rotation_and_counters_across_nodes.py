"""Concurrency that only several nodes can produce: two rotations of one key at the same
moment on two nodes, and a key's uses spread over three nodes that each count in
blocks of their own.

One three-node cluster of server processes (tests/process_cluster.py) serves the
module. A rotation is a change conditional on the key's revision in one transaction:
of two at once, one wins and the other, its revision check lost, is applied again on
the newer key, as on one node where they queue: both answer 200, each makes a
version, and there are never two active versions. A usage limit is counted in
blocks reserved from one stored count: a version never protects more than its limit
however the uses are spread, and the stored count never says fewer uses than were
made (it may say more: a block reserved and not yet given back).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from pg_support import PostgresCluster
from process_cluster import ProcessCluster

pytestmark = pytest.mark.postgresql

ROUNDS = 25
LIMIT = 20
"""The usage limit: small, so the uses below cross several rotations and blocks."""
USES = 150
BLOCK = 4
"""Each node's usage block (default 4,096): small, so the nodes' blocks of one version
interleave instead of the first node's block holding the whole limit."""


@pytest.fixture(scope="module")
def cluster(postgres: PostgresCluster,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessCluster]:
    with ProcessCluster(postgres, tmp_path_factory.mktemp("cluster"),
                        config={"usage_reserve_block": BLOCK}) as made:
        yield made


def active_versions(cluster: ProcessCluster, name: str) -> list[int]:
    """What the database holds: the key's versions in state active."""
    with cluster.admin() as conn:
        rows = conn.execute(
            "SELECT v.version FROM key_versions v JOIN keys k ON k.id = v.key_id "
            "WHERE k.name = %s AND v.state = 'active' ORDER BY v.version", (name,)).fetchall()
    return [row[0] for row in rows]


def test_two_nodes_rotating_one_key_at_the_same_moment_both_rotate_and_never_make_two_primaries(
        cluster: ProcessCluster) -> None:
    name = "race/rotated"
    with cluster.client(0) as http:
        assert http.post("/v1/keys", json={"name": name, "spec": "aes-256-gcm"}
                         ).status_code == 200
    clients = [cluster.client(0), cluster.client(1)]
    statuses: Counter[int] = Counter()
    try:
        for _ in range(ROUNDS):
            start = threading.Barrier(2)

            def rotate(http: httpx.Client, start: threading.Barrier = start) -> int:
                start.wait()
                return http.post(f"/v1/keys/{name}/rotate", json={}).status_code

            with ThreadPoolExecutor(2) as pool:
                answers = list(pool.map(rotate, clients))
            statuses.update(answers)
            assert answers == [200, 200], answers
            assert len(active_versions(cluster, name)) == 1
    finally:
        for http in clients:
            http.close()
    with cluster.client(2) as http:
        key = http.get(f"/v1/keys/{name}").json()
    versions = sorted(v["version"] for v in key["versions"])
    assert statuses[200] == 2 * ROUNDS
    assert versions == list(range(1, statuses[200] + 2))  # one per success, none lost
    assert active_versions(cluster, name) == [key["primary_version"]] == [versions[-1]]
    assert [v["state"] for v in key["versions"] if v["version"] != key["primary_version"]] \
        == ["deactivated"] * statuses[200]


def test_uses_spread_over_three_nodes_never_exceed_the_limit_nor_under_count(
        cluster: ProcessCluster) -> None:
    name = "race/limited"
    with cluster.client(0) as http:
        made = http.post("/v1/keys", json={"name": name, "spec": "aes-256-gcm",
                                           "usage_limit": LIMIT})
        assert made.status_code == 200, made.text
    clients = [cluster.client(i % 3) for i in range(6)]
    try:
        def use(number: int) -> int:
            answer = clients[number % len(clients)].post(
                f"/v1/keys/{name}/encrypt", json={"plaintext": "aGk="})
            assert answer.status_code == 200, answer.text + cluster.logs()
            return int(answer.json()["key_version"])

        with ThreadPoolExecutor(len(clients)) as pool:
            protected = Counter(pool.map(use, range(USES)))
    finally:
        for http in clients:
            http.close()
    assert max(protected.values()) <= LIMIT, protected
    assert len(protected) >= USES // LIMIT  # it did rotate, several times
    with cluster.admin() as conn:
        stored = dict(conn.execute(
            "SELECT v.version, v.protect_reserved FROM key_versions v JOIN keys k "
            "ON k.id = v.key_id WHERE k.name = %s", (name,)).fetchall())
    for version, uses in protected.items():
        assert stored[version] >= uses, (version, stored, protected)
