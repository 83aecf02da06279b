"""Prometheus metrics, in two halves that must not meet on the hot path.

``counters``: per-process operation and latency counters that every request
updates (standard library only; ``Core`` holds one). ``collector``: what a
``/metrics`` scrape reads (the counters, the store, the audit log, the custodian
drills). Import from the submodule you need; the counters' names are re-exported
here because they are cheap.
"""

from keyquorum.metrics.counters import LATENCY_BUCKETS, OperationMetrics

__all__ = ["LATENCY_BUCKETS", "OperationMetrics"]
