"""Prometheus metrics: operation counters and latency, keys by state, overdue rotations.

Counting. ``Runner`` hands each request's audit records to
:meth:`OperationMetrics.observe` once they are written (or, for a lifecycle
change that wrote its own record, once it committed). That path runs thousands
of times a second, so counting is a dict update per record and a ``bisect`` per
request, in plain Python: no locks and no ``prometheus_client`` objects on the
hot path (their ``labels()`` lookup and per-child lock cost several times more).
The counts become metric families only when ``/metrics`` is scraped
(:class:`ServiceCollector`, in its own ``CollectorRegistry``, never the global).

Several workers (``--workers N``). Each worker process counts its own requests,
and a scrape reaches whichever worker accepts the connection. So that every
scrape sees the whole server, each worker publishes a snapshot of its counts to
``<data dir>/metrics/`` every second (only when they changed), and the worker
answering a scrape adds its siblings' snapshots to its own live counts. The
supervisor stops every worker when one dies, so the set of workers is fixed for
a server's life; snapshots of an earlier run (another supervisor) are removed
at start. A sibling's counts may lag by up to ``SHARE_INTERVAL``.

Gauges (keys by state, overdue rotations) are computed from the store at scrape
time, so every worker answers the same. Audit sinks run in every worker; their
health and counts are published with the snapshots and added up per sink
(healthy only if healthy in every worker).
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

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import and_, func, select

from keyquorum.keys.cryptoperiods import default_crypto_period
from keyquorum.keys.states import KeyState
from keyquorum.service.custodian_metrics import custodian_metrics
from keyquorum.storage.schema import key_versions, keys

if TYPE_CHECKING:
    from keyquorum.audit.records import AuditRecord
    from keyquorum.service.core import Core

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


# -- the scrape ---------------------------------------------------------------------------


def overdue_rotations(core: Core, now: float) -> int:
    """Enabled keys whose primary version outlived its crypto-period, or whose
    ``next_rotation`` passed (the inventory's ``rotation_overdue`` flag, in one query)."""
    primary = key_versions
    statement = select(keys.c.spec, keys.c.crypto_period, keys.c.next_rotation,
                       func.coalesce(primary.c.activated_at, primary.c.created_at)).select_from(
        keys.outerjoin(primary, and_(primary.c.key_id == keys.c.id,
                                     primary.c.version == keys.c.primary_version))).where(
        keys.c.state == KeyState.ENABLED.value)
    overdue = 0
    with core.engine.connect() as conn:
        for spec, own_period, next_rotation, activated in conn.execute(statement):
            period = own_period or default_crypto_period(spec).seconds
            if (next_rotation is not None and next_rotation <= now) or (
                    activated is not None and now - activated > period):
                overdue += 1
    return overdue


def _count_by_state(core: Core, column: Any) -> dict[str, int]:
    with core.engine.connect() as conn:
        return {str(state): int(n) for state, n in
                conn.execute(select(column, func.count()).group_by(column))}


class ServiceCollector(Collector):
    """Every keyquorum metric, read at scrape time from the counters and the store."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def collect(self) -> Iterator[Metric]:
        core = self.core
        operations, latency = core.metrics.totals()
        ops = CounterMetricFamily("keyquorum_operations",
                                  "Audited requests (batch items counted one by one) by key, "
                                  "operation and outcome", labels=("key", "operation", "outcome"))
        for (key, operation, outcome), count in sorted(operations.items()):
            ops.add_metric((key, operation, outcome), count)
        yield ops
        bounds = (*core.metrics.buckets, float("inf"))
        seconds = HistogramMetricFamily("keyquorum_request_duration_seconds",
                                        "Request latency until its audit record is written, "
                                        "by operation", labels=("operation",))
        for operation, (counts, total) in sorted(latency.items()):
            cumulative, running = [], 0
            for bound, count in zip(bounds, counts, strict=True):
                running += count
                cumulative.append(("+Inf" if bound == float("inf") else repr(bound), running))
            seconds.add_metric((operation,), cumulative, total)
        yield seconds
        yield from self._state(core)
        yield from audit_metrics(core)
        yield from custodian_metrics(core)

    @staticmethod
    def _state(core: Core) -> Iterator[Metric]:
        sealed = GaugeMetricFamily("keyquorum_sealed", "1 while this process is sealed")
        sealed.add_metric((), 1.0 if core.sealed else 0.0)
        yield sealed
        by_state = _count_by_state(core, keys.c.state)
        gauge = GaugeMetricFamily("keyquorum_keys", "Keys by state", labels=("state",))
        for state in KeyState:
            gauge.add_metric((state.value,), by_state.get(state.value, 0))
        yield gauge
        versions = GaugeMetricFamily("keyquorum_key_versions", "Key versions by state",
                                     labels=("state",))
        for version_state, n in sorted(_count_by_state(core, key_versions.c.state).items()):
            versions.add_metric((version_state,), n)
        yield versions
        overdue = GaugeMetricFamily("keyquorum_rotations_overdue",
                                    "Enabled keys past their crypto-period or rotation date")
        overdue.add_metric((), overdue_rotations(core, core.clock.now()))
        yield overdue


def sink_totals(statuses: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Audit sink status per sink across workers: counts added, healthy only if all are."""
    totals: dict[str, dict[str, Any]] = {}
    for status in statuses:
        name = str(status["name"])
        total = totals.setdefault(name, {"type": status.get("type"),
                                         "policy": status.get("policy"), "healthy": True,
                                         "delivered": 0, "failures": 0, "dropped": 0,
                                         "queued": 0})
        total["healthy"] = total["healthy"] and bool(status.get("healthy"))
        for field in ("delivered", "failures", "dropped", "queued"):
            total[field] += int(status.get(field) or 0)
    return totals


def audit_metrics(core: Core) -> Iterator[Metric]:
    """Audit health: the writer's backlog and every sink's health and counts (all workers)."""
    backlog = GaugeMetricFamily("keyquorum_audit_backlog",
                                "Audit records queued and not yet written (this process)")
    backlog.add_metric((), core.audit.backlog)
    yield backlog
    running = GaugeMetricFamily("keyquorum_audit_running",
                                "1 while this process's audit writer accepts records")
    running.add_metric((), 1.0 if core.audit.running else 0.0)
    yield running
    sinks = sink_totals([*core.audit.sinks.status(), *core.metrics.sibling_sinks()])
    labels = ("sink", "type", "policy")
    healthy = GaugeMetricFamily("keyquorum_audit_sink_healthy",
                                "1 while the audit sink accepts records in time (every worker)",
                                labels=labels)
    queued = GaugeMetricFamily("keyquorum_audit_sink_queued",
                               "Records waiting for the audit sink", labels=labels)
    counters = {field: CounterMetricFamily(f"keyquorum_audit_sink_{field}", text, labels=labels)
                for field, text in (("delivered", "Records the audit sink accepted"),
                                    ("failures", "Failed or timed-out writes to the audit sink"),
                                    ("dropped", "Records a best-effort sink lost"))}
    for name, total in sorted(sinks.items()):
        values = (name, str(total["type"]), str(total["policy"]))
        healthy.add_metric(values, 1.0 if total["healthy"] else 0.0)
        queued.add_metric(values, total["queued"])
        for field, family in counters.items():
            family.add_metric(values, total[field])
    yield healthy
    yield queued
    yield from counters.values()


def registry_for(core: Core) -> CollectorRegistry:
    """A registry of this service's own (the process-global one is never used)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector(core))
    return registry


def share_between_workers(core: Core) -> None:
    """Under ``--workers N``, publish this worker's counts for its siblings; alone, nothing.

    The group is the supervisor's pid: every worker of one server run shares it.
    """
    if core.settings.workers > 1:
        core.metrics.share(core.settings.data_dir / "metrics", os.getppid(),
                           sinks=core.audit.sinks.status)
