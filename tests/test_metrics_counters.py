"""Operation counters and latency histograms, and how sibling workers share them."""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from keyquorum.audit.records import AuditRecord
from keyquorum.metrics.counters import LATENCY_BUCKETS, OperationMetrics


def record(operation: str = "encrypt", key: str | None = "app/k", outcome: str = "ok",
           detail: dict[str, str] | None = None) -> AuditRecord:
    return AuditRecord(time=0.0, request_id="r", identity="acc", operation=operation, key=key,
                       key_version=1, outcome=outcome,
                       error_code=None if outcome == "ok" else "key_state", client=None,
                       detail=detail)


def test_each_record_counts_once_and_a_batch_record_counts_its_items() -> None:
    metrics = OperationMetrics()
    metrics.observe([record()], None)
    metrics.observe([record()], None)
    metrics.observe([record(detail={"items": "40", "batch_size": "41"}),
                     record(outcome="error", detail={"items": "1", "batch_size": "41"})], None)
    metrics.observe([record(operation="sys:seal", key=None)], None)
    operations, _ = metrics.local()
    assert operations == {("app/k", "encrypt", "ok"): 42, ("app/k", "encrypt", "error"): 1,
                          ("", "sys:seal", "ok"): 1}


def test_a_non_numeric_items_detail_counts_as_one() -> None:
    metrics = OperationMetrics()
    metrics.observe([record(detail={"items": "many"})], None)
    assert metrics.local()[0] == {("app/k", "encrypt", "ok"): 1}


def test_latency_lands_in_the_first_bucket_at_or_above_it() -> None:
    metrics = OperationMetrics()
    metrics.observe([record()], time.perf_counter())  # microseconds: the first bucket
    metrics.observe([record()], time.perf_counter() - 0.003)  # 3 ms: the 5 ms bucket
    metrics.observe([record()], time.perf_counter() - 60)  # beyond the last bound: +Inf
    metrics.observe([record()], None)  # counted, not timed
    _, latency = metrics.local()
    counts, total = latency["encrypt"]
    assert len(counts) == len(LATENCY_BUCKETS) + 1
    assert counts[0] == 1
    assert counts[LATENCY_BUCKETS.index(0.005)] == 1
    assert counts[-1] == 1
    assert sum(counts) == 3
    assert 60 < total < 61


def test_sibling_workers_add_up_through_their_snapshots(tmp_path: Path) -> None:
    first, second, stranger = OperationMetrics(), OperationMetrics(), OperationMetrics()
    first.share(tmp_path, group=7, member=1, publish_every=None)
    second.share(tmp_path, group=7, member=2, publish_every=None)
    first.observe([record()], time.perf_counter())
    second.observe([record(), record(outcome="denied")], time.perf_counter())
    second.observe([record(operation="decrypt")], None)
    assert first.totals()[0] == {("app/k", "encrypt", "ok"): 1}  # nothing published yet
    first.publish()
    second.publish()
    operations, latency = first.totals()
    assert operations == {("app/k", "encrypt", "ok"): 2, ("app/k", "encrypt", "denied"): 1,
                          ("app/k", "decrypt", "ok"): 1}
    assert sum(latency["encrypt"][0]) == 2
    assert second.totals()[0] == operations  # either worker answers the same
    stranger.share(tmp_path, group=8, member=3, publish_every=None)  # a later server run
    assert sorted(p.name for p in tmp_path.glob("*.json")) == []  # the old run's snapshots go
    assert stranger.totals()[0] == {}


def test_a_damaged_sibling_snapshot_is_skipped(tmp_path: Path) -> None:
    mine = OperationMetrics()
    mine.share(tmp_path, group=1, member=1, publish_every=None)
    (tmp_path / "1-2.json").write_text("{not json")
    (tmp_path / "1-3.json").write_text('{"operations": [["k", "encrypt", "ok", 5]], '
                                       '"latency": {}}')
    mine.observe([record(key="k")], None)
    assert mine.totals()[0] == {("k", "encrypt", "ok"): 6}


def test_the_prometheus_families_parse(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily

    metrics = OperationMetrics()
    metrics.observe([record(key='we"ird\\key')], time.perf_counter())

    class Only:
        def collect(self):  # type: ignore[no-untyped-def]
            family = CounterMetricFamily("keyquorum_operations", "h",
                                         labels=("key", "operation", "outcome"))
            for labels, n in metrics.local()[0].items():
                family.add_metric(labels, n)
            yield family

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Only())  # type: ignore[arg-type]
    text = generate_latest(registry).decode()
    parsed = {s.labels["key"]: s.value for f in text_string_to_metric_families(text)
              for s in f.samples if s.name == "keyquorum_operations_total"}
    assert parsed == {'we"ird\\key': 1.0}  # label values are escaped by the exposition


def test_sink_status_adds_up_across_workers_and_is_healthy_only_everywhere(
        tmp_path: Path) -> None:
    from keyquorum.metrics.collector import sink_totals

    sibling = OperationMetrics()
    sibling.share(tmp_path, group=3, member=2, publish_every=None, sinks=lambda: [
        {"name": "siem", "type": "syslog", "policy": "best-effort", "healthy": False,
         "delivered": 5, "failures": 2, "dropped": 2, "queued": 1}])
    sibling.publish()
    mine = OperationMetrics()
    mine.share(tmp_path, group=3, member=1, publish_every=None)
    own = [{"name": "siem", "type": "syslog", "policy": "best-effort", "healthy": True,
            "delivered": 10, "failures": 0, "dropped": 0, "queued": 0}]
    totals = sink_totals([*own, *mine.sibling_sinks()])
    assert totals == {"siem": {"type": "syslog", "policy": "best-effort", "healthy": False,
                               "delivered": 15, "failures": 2, "dropped": 2, "queued": 1}}
