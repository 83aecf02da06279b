"""One audit trail across two nodes on one PostgreSQL, through the HTTP API.

Two in-process nodes (``cluster_support``): each appends its records to a chain of its
own; the scheduler's checkpoint job, run by one node, braids both chains; either
node's ``POST /v1/audit/verify`` checks both chains and the braids; ``GET /v1/audit``
pages across both chains without repeating or skipping a record; and a record cut
from the other node's chain behind the braid is found by either node.
"""

from __future__ import annotations

from typing import Any

import pytest

from cluster_support import database_of
from inprocess_server import InProcessServer
from pg_support import PostgresCluster

HOUR = 3600.0


@pytest.fixture
def nodes(two_nodes: tuple[InProcessServer, ...]) -> tuple[InProcessServer, ...]:
    return two_nodes


def make_keys(node: InProcessServer, prefix: str, count: int) -> None:
    with node.client() as http:
        for n in range(count):
            made = http.post("/v1/keys", json={"name": f"{prefix}/{n}", "spec": "aes-256-gcm"})
            assert made.status_code == 200, made.text


def verify(node: InProcessServer) -> dict[str, Any]:
    with node.client() as http:
        answer = http.post("/v1/audit/verify", json={})
    assert answer.status_code == 200, answer.text
    report: dict[str, Any] = answer.json()
    return report


def test_two_nodes_chains_are_braided_by_one_tick_and_verified_by_either_node(
        nodes: tuple[InProcessServer, ...], postgres: PostgresCluster) -> None:
    a, b = nodes
    make_keys(a, "a", 3)
    make_keys(b, "b", 3)
    a.advance_clock(2 * HOUR)  # the checkpoint job: one braid over both chains
    report = verify(b)
    assert report["ok"], report
    chains = {chain["node"]: chain for chain in report["nodes"]}
    assert len(chains) == 2 and report["braids"] >= 1
    assert all(chain["records"] > 3 and chain["last_checkpoint"] for chain in chains.values())

    seen: list[int] = []
    token: str | None = None
    with a.client() as http:
        while True:
            page = http.get("/v1/audit", params={"limit": 7, **(
                {"page_token": token} if token else {})}).json()
            seen.extend(record["id"] for record in page["records"])
            token = page["next_page_token"]
            if token is None:
                break
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen))
    with postgres.admin(database_of(a)) as conn:
        stored = {row[0] for row in conn.execute("SELECT id FROM audit_records WHERE id <= %s",
                                                 (seen[0],)).fetchall()}
        assert set(seen) == stored
        # An insider cuts node b's chain behind the braid and moves its head back.
        node_b = max(chains, key=lambda n: n)  # b registered second
        signed = chains[node_b]["last_checkpoint"]
        conn.execute("DELETE FROM audit_records WHERE node = %s AND seq >= %s",
                     (node_b, signed))
        conn.execute("UPDATE audit_head SET seq = %s - 1, chain_hash = (SELECT chain_hash "
                     "FROM audit_records WHERE node = %s AND seq = %s - 1) WHERE id = %s",
                     (signed, node_b, signed, node_b))
    for node in (a, b):
        fault = verify(node)["first_bad"]
        assert fault["node"] == node_b and "tail was cut" in fault["reason"]
