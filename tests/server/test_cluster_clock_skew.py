"""A node whose clock is wrong does not run the scheduled jobs early, nor hold them back.

Two in-process nodes on one PostgreSQL (``cluster_support``). Each node's test clock
moves in two ways (``keyquorum.clock``): ``advance_clock`` is time passing (the
database's time is taken as moved as far), ``skew_by`` makes one node's clock wrong,
as a host whose NTP failed. Every tick is run by the test (``advance_clock``), so what
a tick does is decided here, not by timing.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from cluster_support import cluster_nodes
from inprocess_server import InProcessServer
from keyquorum.clock import OffsetClock
from pg_support import PostgresCluster

DAY = 86400.0
FAST = 600.0  # ten minutes (issue 15: "a node whose clock is skewed")


def clock_of(node: InProcessServer) -> OffsetClock:
    assert node.core is not None and isinstance(node.core.clock, OffsetClock)
    return node.core.clock


def both_advance(nodes: tuple[InProcessServer, ...], seconds: float) -> list[dict[str, Any]]:
    """Time passes for the whole cluster; each node's scheduler ticks once (in order)."""
    return [node.advance_clock(seconds) for node in nodes]


def make_key(node: InProcessServer, name: str, **fields: Any) -> None:
    made = node.client().post("/v1/keys", json={"name": name, "spec": "aes-256-gcm",
                                                **fields})
    assert made.status_code == 200, made.text


def key(node: InProcessServer, name: str) -> dict[str, Any]:
    answer = node.client().get(f"/v1/keys/{name}")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def health_clock(node: InProcessServer) -> dict[str, Any]:
    clock: dict[str, Any] = node.anonymous().get("/v1/sys/health").json()["clock"]
    return clock


def test_a_node_ten_minutes_fast_neither_rotates_nor_destroys_early(
        two_nodes: tuple[InProcessServer, ...]) -> None:
    a, b = two_nodes
    make_key(a, "skew/rotating", rotation_period="1d")
    make_key(a, "skew/doomed")
    scheduled = a.client().post("/v1/keys/skew/doomed/schedule-deletion", json={"days": 7})
    assert scheduled.status_code == 200, scheduled.text
    clock_of(a).skew_by(FAST)
    # Five minutes before the rotation is due: by A's clock it is five minutes past.
    ticks = both_advance(two_nodes, DAY - 300)
    assert ticks[0]["refused"] == "clock-skew" and ticks[0]["rotated"] == []
    assert ticks[1]["refused"] is None and ticks[1]["rotated"] == []
    assert key(b, "skew/rotating")["primary_version"] == 1
    seen = health_clock(a)
    assert seen["within_bound"] is False and seen["skew_seconds"] == pytest.approx(FAST, abs=5)
    assert health_clock(b)["within_bound"] is True
    metrics = a.client().get("/metrics").text
    assert "keyquorum_clock_skew_exceeded 1.0" in metrics
    ticks = both_advance(two_nodes, 301)  # now due for everyone: B (right clock) does it
    assert ticks[0]["rotated"] == [] and ticks[1]["rotated"] == ["skew/rotating"]
    # Five minutes before the destruction is due: A refuses again, B finds nothing due.
    ticks = both_advance(two_nodes, 6 * DAY - 301)
    assert [t["destroyed"] for t in ticks] == [[], []]
    assert key(b, "skew/doomed")["state"] == "destroy-scheduled"
    ticks = both_advance(two_nodes, 301)
    assert ticks[0]["destroyed"] == [] and ticks[1]["destroyed"] == ["skew/doomed"]


def test_a_node_behind_runs_nothing_and_the_other_node_does_the_due_work(
        two_nodes: tuple[InProcessServer, ...], caplog: pytest.LogCaptureFixture) -> None:
    a, b = two_nodes
    make_key(a, "skew/late", rotation_period="1d")
    clock_of(a).skew_by(-FAST)
    caplog.set_level(logging.WARNING, logger="keyquorum.clock")
    # A minute past due; A's clock says nine minutes to go, and A keeps ticking.
    assert a.advance_clock(DAY + 60)["refused"] == "clock-skew"
    stop = threading.Event()
    refusals: list[str | None] = []

    def keep_ticking() -> None:
        while not stop.is_set():
            refusals.append(a.advance_clock(0)["refused"])

    ticking = threading.Thread(target=keep_ticking)
    ticking.start()
    try:
        # A takes no job lock while it refuses: B's first tick is never skipped for it.
        assert b.advance_clock(DAY + 60)["rotated"] == ["skew/late"]
    finally:
        stop.set()
        ticking.join(30)
    assert refusals and set(refusals) == {"clock-skew"}
    assert key(a, "skew/late")["primary_version"] == 2
    said = [r.getMessage() for r in caplog.records if r.name == "keyquorum.clock"]
    assert len([m for m in said if "runs no scheduled job" in m]) == 1  # once, not per tick
    clock_of(a).skew_by(FAST)  # NTP fixed A's clock: it runs the jobs again
    assert a.advance_clock(0)["refused"] is None
    assert health_clock(a)["within_bound"] is True
    assert any("back within" in r.getMessage() for r in caplog.records)


def test_what_is_due_is_judged_on_the_database_clock_not_the_nodes(
        postgres: PostgresCluster, tmp_path: Path) -> None:
    # A bound of an hour lets A's ten minutes through the guard: only the clock the
    # jobs judge by keeps it from rotating early.
    with cluster_nodes(postgres, tmp_path, config={"max_clock_skew": 3600}) as nodes:
        a, _ = nodes
        make_key(a, "skew/judged", rotation_period="1d")
        clock_of(a).skew_by(FAST)
        early = a.advance_clock(DAY - 300)
        assert early["refused"] is None and early["rotated"] == []
        assert health_clock(a)["within_bound"] is True
        assert a.advance_clock(301)["rotated"] == ["skew/judged"]
