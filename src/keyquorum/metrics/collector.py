"""Scrape-time collection for ``/metrics``: counters, gauges from the store, audit health.

:class:`ServiceCollector` (in its own ``CollectorRegistry``, never the global)
turns the hot-path counts (``metrics/counters.py``, this worker's plus its
siblings' snapshots) into metric families when ``/metrics`` is scraped.

Gauges (keys by state, overdue rotations) are computed from the store at scrape
time, so every worker answers the same. Audit sinks run in every worker; their
health and counts are published with the snapshots and added up per sink
(healthy only if healthy in every worker). Custodian drill gauges are in
``metrics/custodians.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from keyquorum.keys.cryptoperiods import default_crypto_period
from keyquorum.keys.states import KeyState
from keyquorum.metrics.custodians import custodian_metrics
from keyquorum.storage import reports_repo

if TYPE_CHECKING:
    from keyquorum.service.core import Core


def overdue_rotations(core: Core, now: float) -> int:
    """Enabled keys whose primary version outlived its crypto-period, or whose
    ``next_rotation`` passed (the inventory's ``rotation_overdue`` flag, in one query)."""
    with core.engine.connect() as conn:
        ages = reports_repo.enabled_primary_ages(conn)
    overdue = 0
    for age in ages:
        period = age.crypto_period or default_crypto_period(age.spec, age.purpose).seconds
        if (age.next_rotation is not None and age.next_rotation <= now) or (
                age.activated_at is not None and now - age.activated_at > period):
            overdue += 1
    return overdue


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
        yield from clock_metrics(core)
        yield from audit_metrics(core)
        yield from custodian_metrics(core)

    @staticmethod
    def _state(core: Core) -> Iterator[Metric]:
        sealed = GaugeMetricFamily("keyquorum_sealed", "1 while this process is sealed")
        sealed.add_metric((), 1.0 if core.sealed else 0.0)
        yield sealed
        with core.engine.connect() as conn:
            by_state = reports_repo.keys_by_state(conn)
            by_version_state = reports_repo.versions_by_state(conn)
        gauge = GaugeMetricFamily("keyquorum_keys", "Keys by state", labels=("state",))
        for state in KeyState:
            gauge.add_metric((state.value,), by_state.get(state.value, 0))
        yield gauge
        versions = GaugeMetricFamily("keyquorum_key_versions", "Key versions by state",
                                     labels=("state",))
        for version_state, n in sorted(by_version_state.items()):
            versions.add_metric((version_state,), n)
        yield versions
        overdue = GaugeMetricFamily("keyquorum_rotations_overdue",
                                    "Enabled keys past their crypto-period or rotation date")
        overdue.add_metric((), overdue_rotations(core, core.clock.now()))
        yield overdue


def clock_metrics(core: Core) -> Iterator[Metric]:
    """This node's clock against the database's, once measured (PostgreSQL only)."""
    clock = core.clock_guard.health()
    if clock is None or clock.skew is None:
        return
    skew = GaugeMetricFamily("keyquorum_clock_skew_seconds",
                             "This node's clock minus the database's at the last scheduler "
                             "tick (positive: ahead)")
    skew.add_metric((), clock.skew)
    yield skew
    exceeded = GaugeMetricFamily("keyquorum_clock_skew_exceeded",
                                 "1 while the skew is past max_clock_skew: this node runs no "
                                 "scheduled job")
    exceeded.add_metric((), 0.0 if clock.within_bound else 1.0)
    yield exceeded


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
