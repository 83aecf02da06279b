"""Per-process counters of audited operations and request latency: the hot path.

``Runner`` hands each request's audit records to :meth:`OperationMetrics.observe`
once they are written (or, for a lifecycle change that wrote its own record, once
it committed). That path runs thousands of times a second, so counting is a dict
update per record and a ``bisect`` per request, in plain Python: no locks and no
``prometheus_client`` objects on the hot path (their ``labels()`` lookup and
per-child lock cost several times more). The counts become metric families only
when ``/metrics`` is scraped (``metrics/collector.py``).

This module depends on the standard library only (``Core`` holds an
``OperationMetrics``; nothing here may import the service layer back).

Several workers (``--workers N``). Each worker process counts its own requests,
and a scrape reaches whichever worker accepts the connection. So that every
scrape sees the whole server, each worker publishes a snapshot of its counts to
``<data dir>/metrics/`` every second (only when they changed), and the worker
answering a scrape adds its siblings' snapshots to its own live counts. The
supervisor stops every worker when one dies, so the set of workers is fixed for
a server's life; snapshots of an earlier run (another supervisor) are removed
at start. A sibling's counts may lag by up to ``SHARE_INTERVAL``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keyquorum.audit.records import AuditRecord

log = logging.getLogger(__name__)

LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of the latency histogram: a crypto request is ~1 ms, an
audit commit under load up to tens of ms, a timed-out audit write 10 s."""

SHARE_INTERVAL = 1.0
Counts = dict[tuple[str, str, str], int]
Latency = dict[str, tuple[list[int], float]]  # operation -> (per-bucket counts, +Inf last; sum)


class OperationMetrics:
    """Per-process counters of audited operations and request latency."""

    def __init__(self, buckets: Iterable[float] = LATENCY_BUCKETS) -> None:
        self.buckets = tuple(sorted(buckets))
        # (key or "", operation, outcome) -> items (a batch record counts its items)
        self._operations: Counts = {}
        # operation -> per-bucket counts (not cumulative; the last slot is +Inf)
        self._latency: dict[str, list[int]] = {}
        self._latency_sum: dict[str, float] = {}
        self._changes = 0
        self._sharing: _Sharing | None = None

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
        self._changes += 1
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

    def local(self) -> tuple[Counts, Latency]:
        """This process's counts, copied (safe to read while requests keep counting)."""
        sums = dict(self._latency_sum)
        latency = {op: (list(counts), sums.get(op, 0.0))
                   for op, counts in list(self._latency.items())}
        return dict(self._operations), latency

    def totals(self) -> tuple[Counts, Latency]:
        """This process's counts plus its sibling workers' latest snapshots."""
        operations, latency = self.local()
        if self._sharing is not None:
            for other_ops, other_latency, _sinks in self._sharing.siblings():
                _merge(operations, latency, other_ops, other_latency, len(self.buckets) + 1)
        return operations, latency

    def share(self, directory: Path, group: int, member: int | None = None, *,
              publish_every: float | None = SHARE_INTERVAL,
              sinks: Callable[[], list[dict[str, Any]]] | None = None) -> None:
        """Publish snapshots for the sibling workers of supervisor ``group`` (idempotent).

        ``member`` names this worker (its pid); ``sinks`` reads its audit sinks' status,
        published with the counts; ``publish_every=None`` starts no thread (tests call
        ``publish()`` themselves).
        """
        if self._sharing is None:
            self._sharing = _Sharing(self, directory, group,
                                     os.getpid() if member is None else member, sinks)
            self._sharing.start(publish_every)

    def sibling_sinks(self) -> list[dict[str, Any]]:
        """The audit sink status every sibling worker last published (none when alone)."""
        if self._sharing is None:
            return []
        return [sink for _ops, _latency, sinks in self._sharing.siblings() for sink in sinks]

    def publish(self) -> None:
        """Write this worker's snapshot now (the sharing thread does it every second)."""
        if self._sharing is not None:
            self._sharing.publish()


def _merge(operations: Counts, latency: Latency, other_ops: Counts, other_latency: Latency,
           slots: int) -> None:
    for label, count in other_ops.items():
        operations[label] = operations.get(label, 0) + count
    for op, (counts, total) in other_latency.items():
        if len(counts) != slots:
            continue  # another bucket layout (cannot happen within one run); skip, not crash
        mine, my_sum = latency.get(op, ([0] * slots, 0.0))
        latency[op] = ([a + b for a, b in zip(mine, counts, strict=True)], my_sum + total)


class _Sharing:
    """One worker's snapshot publisher and its siblings' snapshot reader."""

    def __init__(self, metrics: OperationMetrics, directory: Path, group: int, member: int,
                 sinks: Callable[[], list[dict[str, Any]]] | None) -> None:
        self.metrics = metrics
        self.directory = directory
        self.prefix = f"{group}-"
        self.path = directory / f"{group}-{member}.json"
        self.sinks = sinks
        self._published: tuple[int, list[dict[str, Any]]] | None = None

    def start(self, every: float | None) -> None:
        self.directory.mkdir(mode=0o700, exist_ok=True)
        for old in self.directory.glob("*.json"):  # an earlier run's workers
            if not old.name.startswith(self.prefix):
                with contextlib.suppress(OSError):
                    old.unlink()
        if every is not None:
            threading.Thread(target=self._run, args=(every,), name="keyquorum-metrics",
                             daemon=True).start()

    def _run(self, every: float) -> None:
        while True:
            try:
                self.publish()
            except OSError as exc:  # a full disk must not stop the worker; say so once a tick
                log.warning("could not publish metrics for sibling workers (%s)",
                            type(exc).__name__)
            time.sleep(every)

    def publish(self) -> None:
        state = (self.metrics._changes, self.sinks() if self.sinks is not None else [])
        if state == self._published:
            return
        operations, latency = self.metrics.local()
        body = {"operations": [[*label, count] for label, count in operations.items()],
                "latency": {op: [counts, total] for op, (counts, total) in latency.items()},
                "sinks": state[1]}
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(body))
        os.replace(temporary, self.path)  # readers see the old or the new file, never half
        self._published = state

    def siblings(self) -> Iterator[tuple[Counts, Latency, list[dict[str, Any]]]]:
        for path in self.directory.glob(f"{self.prefix}*.json"):
            if path == self.path:
                continue
            try:
                body = json.loads(path.read_text())
                operations = {(str(k), str(o), str(r)): int(n)
                              for k, o, r, n in body["operations"]}
                latency = {str(op): ([int(c) for c in counts], float(total))
                           for op, (counts, total) in body["latency"].items()}
                sinks = [dict(sink) for sink in body.get("sinks", [])]
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a sibling mid-start or a damaged file: its counts are skipped
            yield operations, latency, sinks
