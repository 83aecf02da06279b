"""Operation counters and latencies, counted where every request's audit records pass.

``Runner`` hands each request's records to :meth:`OperationMetrics.observe` once
they are written (or, for a lifecycle change that wrote its own record, once it
committed). That path runs thousands of times a second, so counting is a dict
update per record and a ``bisect`` per request, in plain Python: no locks, no
``prometheus_client`` objects (their ``labels()`` lookup and per-child lock cost
several times more). The numbers become Prometheus metric families only when
``/metrics`` is scraped (``api/metrics_export.py``).

Counts are per server process. Under ``--workers N`` every worker counts its
own requests, and a scrape is answered by whichever worker accepts the
connection; see ``docs/OPERATIONS.md`` ("Metrics") for what that means.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keyquorum.audit.records import AuditRecord

LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of the latency histogram: a crypto request is ~1 ms, an
audit commit under load up to tens of ms, a timed-out audit write 10 s."""


@dataclass(frozen=True)
class LatencySnapshot:
    """One operation's histogram: cumulative bucket counts (``+Inf`` last) and sum."""

    buckets: tuple[tuple[float, int], ...]
    total: int
    sum: float


class OperationMetrics:
    """Per-process counters of audited operations and request latency."""

    def __init__(self, buckets: Iterable[float] = LATENCY_BUCKETS) -> None:
        self.buckets = tuple(sorted(buckets))
        # (key or "", operation, outcome) -> items (a batch record counts its items)
        self._operations: dict[tuple[str, str, str], int] = {}
        # operation -> per-bucket counts (not cumulative; the last slot is +Inf)
        self._latency: dict[str, list[int]] = {}
        self._latency_sum: dict[str, float] = {}

    def observe(self, records: list[AuditRecord], started: float | None) -> None:
        """Count a request's records; ``started`` (``time.perf_counter()``) times it.

        The hot path: keep it to dictionary updates.
        """
        operations = self._operations
        for record in records:
            detail = record.detail
            items = detail.get("items") if detail else None  # set by the batch aggregation
            label = (record.key or "", record.operation, record.outcome)
            operations[label] = operations.get(label, 0) + (
                int(items) if items is not None and items.isdigit() else 1)
        if started is None or not records:
            return
        seconds = time.perf_counter() - started
        operation = records[0].operation
        counts = self._latency.get(operation)
        if counts is None:
            counts = self._latency[operation] = [0] * (len(self.buckets) + 1)
            self._latency_sum[operation] = 0.0
        counts[bisect_left(self.buckets, seconds)] += 1
        self._latency_sum[operation] += seconds

    def operations(self) -> dict[tuple[str, str, str], int]:
        """A copy of the operation counts, safe to read while requests keep counting."""
        return dict(self._operations)

    def latency(self) -> dict[str, LatencySnapshot]:
        """Each operation's latency histogram, cumulative as Prometheus expects."""
        sums = dict(self._latency_sum)
        snapshots: dict[str, LatencySnapshot] = {}
        for operation, counts in list(self._latency.items()):
            running = 0
            cumulative: list[tuple[float, int]] = []
            for bound, count in zip((*self.buckets, float("inf")), list(counts), strict=True):
                running += count
                cumulative.append((bound, running))
            snapshots[operation] = LatencySnapshot(tuple(cumulative), running,
                                                   sums.get(operation, 0.0))
        return snapshots
