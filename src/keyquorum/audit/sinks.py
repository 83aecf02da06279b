"""Audit sinks outside the database: delivery to each, under each one's failure policy.

Each sink runs on its own thread behind its own queue, so a slow, hung or full
sink holds up nobody but the requests that must wait for it. What happens when
a sink fails is explicit, per sink:

- ``required``: the records of a group must reach the sink within its
  ``timeout``, or the group's transaction rolls back and its operations fail
  with ``audit_unavailable`` (fail closed). Records go to a sink *before* the
  database commits, so a rolled-back group can leave a record in the sink that
  the database does not have: a sink may over-report, never miss.
- ``best-effort``: records are queued and the caller goes on. A failure, a
  timeout or a full queue is counted, shown in health and metrics, and logged
  as an alert; the operation still succeeds.

A sink that is stuck (its current write has run longer than its timeout) fails
a required delivery at once instead of making every request wait it out again.
Lines are the export format's ``record`` lines (``export.py``), so a file sink is
itself a chain that ``keyquorum audit verify --file`` can check.

A sink's configuration is in ``sink_config.py``, what it writes to (a file, syslog)
in ``sink_writers.py``; their names are re-exported here, where callers found them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from keyquorum.audit.export import record_line
from keyquorum.audit.sink_config import (
    BEST_EFFORT,
    FACILITIES,
    REQUIRED,
    SINK_KINDS,
    SinkConfig,
    parse_sink_config,
    parse_sink_configs,
)
from keyquorum.audit.sink_writers import FileSink, Sink, SyslogSink, open_sink
from keyquorum.errors import AuditUnavailable

__all__ = [
    "BEST_EFFORT",
    "FACILITIES",
    "REQUIRED",
    "SINK_KINDS",
    "FileSink",
    "Sink",
    "SinkConfig",
    "SinkSet",
    "SinkWorker",
    "SyslogSink",
    "open_sink",
    "parse_sink_config",
    "parse_sink_configs",
]

log = logging.getLogger("keyquorum.audit.sinks")

_MAX_QUEUED = 10_000  # best-effort groups waiting for one sink before new ones are dropped


class _Ticket:
    __slots__ = ("done", "ok")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False


class SinkWorker:
    """One sink's thread, queue and health counters."""

    def __init__(self, config: SinkConfig, sink: Sink | None = None) -> None:
        self.config = config
        self._sink = sink if sink is not None else open_sink(config)
        self._queue: deque[tuple[list[bytes], _Ticket]] = deque()
        self._cond = threading.Condition()
        self._running = False
        self._thread: threading.Thread | None = None
        self._busy_since: float | None = None
        self.delivered = 0
        self.failures = 0
        self.dropped = 0
        self.last_error: str | None = None
        self.last_failure_at: float | None = None
        self.healthy = True

    def start(self) -> None:
        with self._cond:
            if self._running:
                return
            self._running = True
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name=f"keyquorum-sink-{self.config.name}")
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._running = False
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)  # a hung sink's thread is a daemon: left behind

    @property
    def stuck(self) -> bool:
        busy = self._busy_since
        return busy is not None and time.monotonic() - busy > self.config.timeout

    def submit(self, lines: list[bytes]) -> _Ticket | None:
        """Queue ``lines``; ``None`` if the queue is full (counted as a drop)."""
        ticket = _Ticket()
        with self._cond:
            if len(self._queue) >= _MAX_QUEUED or not self._running:
                self._fail("queue full" if self._running else "stopped", dropped=len(lines))
                return None
            self._queue.append((lines, ticket))
            self._cond.notify()
        return ticket

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and self._running:
                    self._cond.wait()
                if not self._queue:
                    return
                lines, ticket = self._queue.popleft()
            self._busy_since = time.monotonic()
            try:
                self._sink.write(lines)
            except Exception as exc:  # any failure: counted, alerted, never raised here
                with self._cond:
                    self._fail(type(exc).__name__, dropped=len(lines))
            else:
                with self._cond:
                    self.delivered += len(lines)
                    if not self.healthy:
                        log.warning("audit sink %s recovered", self.config.name)
                    self.healthy = True
                ticket.ok = True
            finally:
                self._busy_since = None
                ticket.done.set()

    def _fail(self, reason: str, *, dropped: int = 0) -> None:
        """Count a failure and alert (logged: the sink's name and the error's kind, no records)."""
        self.failures += 1
        self.dropped += dropped if self.config.policy == BEST_EFFORT else 0
        self.last_error = reason
        self.last_failure_at = time.time()
        if self.healthy or self.failures % 100 == 0:
            log.error("ALERT audit sink %s (%s) failed: %s (%d failures so far)",
                      self.config.name, self.config.policy, reason, self.failures)
        self.healthy = False

    def timed_out(self) -> None:
        with self._cond:
            self._fail("timeout")

    def status(self) -> dict[str, Any]:
        return {"name": self.config.name, "type": self.config.type,
                "policy": self.config.policy, "healthy": self.healthy and not self.stuck,
                "delivered": self.delivered, "failures": self.failures,
                "dropped": self.dropped, "queued": len(self._queue),
                "last_error": self.last_error, "last_failure_at": self.last_failure_at}

    def close(self) -> None:
        self._sink.close()


class SinkSet:
    """Every configured sink; ``deliver`` enforces each one's failure policy.

    Sinks can be added and removed while records flow: the list is replaced, never
    edited in place, so a delivery in progress finishes on the list it started with.
    """

    def __init__(self, workers: Sequence[SinkWorker]) -> None:
        self._workers = list(workers)
        self._change = threading.Lock()
        self._started = False

    def names(self) -> list[str]:
        return [worker.config.name for worker in self._workers]

    def add(self, config: SinkConfig) -> None:
        """Start delivering to a new sink (its name must be new)."""
        worker = SinkWorker(config)
        with self._change:
            if config.name in self.names():
                raise ValueError(f"an audit sink named {config.name!r} exists")
            if self._started:
                worker.start()
            self._workers = [*self._workers, worker]

    def remove(self, name: str) -> SinkConfig:
        """Stop delivering to sink ``name``; its thread drains what it holds, then ends."""
        with self._change:
            found = [w for w in self._workers if w.config.name == name]
            if not found:
                raise KeyError(name)
            self._workers = [w for w in self._workers if w.config.name != name]
        found[0].stop(timeout=0)
        return found[0].config

    @classmethod
    def from_configs(cls, configs: Sequence[SinkConfig]) -> SinkSet:
        return cls([SinkWorker(config) for config in configs])

    def start(self) -> None:
        with self._change:
            self._started = True
            for worker in self._workers:
                worker.start()

    def stop(self) -> None:
        with self._change:
            self._started = False
            for worker in self._workers:
                worker.stop()

    def __bool__(self) -> bool:
        return bool(self._workers)

    def deliver(self, rows: Sequence[dict[str, Any]]) -> None:
        """Hand linked rows to every sink; ``AuditUnavailable`` if a required one fails."""
        if not self._workers:
            return
        self.deliver_lines([record_line(row) for row in rows])

    def deliver_lines(self, lines: list[bytes]) -> None:
        waits: list[tuple[SinkWorker, _Ticket | None]] = []
        for worker in self._workers:  # one snapshot of the list for this delivery
            required = worker.config.policy == REQUIRED
            if worker.stuck:
                worker.timed_out()
                if required:
                    raise AuditUnavailable(f"audit sink {worker.config.name} is not "
                                           "answering, so nothing was done")
            ticket = worker.submit(lines)
            if required:
                waits.append((worker, ticket))
        for worker, ticket in waits:
            if ticket is None:
                raise AuditUnavailable(f"audit sink {worker.config.name} is not accepting "
                                       "records, so nothing was done")
            if not ticket.done.wait(worker.config.timeout):
                worker.timed_out()
                raise AuditUnavailable(f"audit sink {worker.config.name} timed out, so "
                                       "nothing was done")
            if not ticket.ok:
                raise AuditUnavailable(f"audit sink {worker.config.name} failed, so "
                                       "nothing was done")

    def status(self) -> list[dict[str, Any]]:
        return [worker.status() for worker in self._workers]
