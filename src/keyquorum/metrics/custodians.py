"""Custodian drill gauges for ``/metrics``: the quorum margin and each last verification.

Alert on ``keyquorum_custodian_quorum_margin <= 0``: one more lost share then
locks the data (below zero it may already be locked); and on
``keyquorum_custodian_acknowledged == 0`` a day after init or a rekey: that
custodian never proved they received their share.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from keyquorum.service.core import Core


def custodian_metrics(core: Core) -> Iterator[Metric]:
    config = core.seal_config
    if config is None:
        return
    registry = core.custodian_registry
    rows = registry.rows(config)
    quorum = registry.quorum(config, rows)
    margin = GaugeMetricFamily(
        "keyquorum_custodian_quorum_margin",
        f"Shares verified within the drill window ({quorum.drill_window_days} days) beyond "
        "the threshold; <= 0: one more lost share locks the data")
    margin.add_metric((), quorum.margin)
    yield margin
    last = GaugeMetricFamily("keyquorum_custodian_last_verified_timestamp_seconds",
                             "When each custodian last showed their share (proof or unseal); "
                             "0 if never", labels=("custodian", "index"))
    acknowledged = GaugeMetricFamily(
        "keyquorum_custodian_acknowledged",
        "1 once the custodian proved their share after it was handed out; 0: it does not "
        "count toward the quorum margin and may already be lost", labels=("custodian", "index"))
    for row in rows:
        last.add_metric((row.name, str(row.index)), row.last_verified_at or 0.0)
        acknowledged.add_metric((row.name, str(row.index)),
                                1.0 if row.acknowledged_at is not None else 0.0)
    yield last
    yield acknowledged
