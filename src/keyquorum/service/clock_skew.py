"""A node whose clock disagrees with the database's runs none of the time-driven jobs.

Nodes on one PostgreSQL decide together when a key is due for destruction or
rotation, and when imported material has expired: one of them at a time (the job
lock) runs the jobs, so a node ten minutes fast would destroy a key ten minutes
early, and one behind would rotate late. Two defences, both in the scheduler:

- **one clock for "is it due"**: the jobs compare due dates with the *database's*
  time (``clock_timestamp()``, read at the start of each tick), never with the node's,
  so which node happens to hold the lock does not change what is due;
- **a bound on skew**: each tick measures this node's clock against the database's
  (half the query's round trip is the uncertainty). Past ``max_clock_skew`` (5 s by
  default), in either direction, the node takes no job lock at all, so the jobs'
  writes (the rotated version's dates, the next rotation, the audit records' times)
  never carry a clock that far off, and another node's next tick does the work. It
  says so once in the log (and again when the clock is back within the bound), in
  ``GET /v1/sys/health`` (``clock``) and in ``/metrics``
  (``keyquorum_clock_skew_seconds``, ``keyquorum_clock_skew_exceeded``).

The node keeps serving requests: the checks made at request time (a token's expiry,
imported material's ``ValidTo``) use its own clock and are off by its skew, which the
alert is there to fix. Taking it out of the load balancer instead would take *every*
node out when the database's clock is the wrong one (docs/CLUSTER.md, "Clocks").

On SQLite there is one host and one clock (``--workers`` share it): nothing to compare,
so the guard always allows and the jobs use the node's clock.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from sqlalchemy import Engine

from keyquorum.clock import Clock, world_advance
from keyquorum.service.sys_values import ClockHealth
from keyquorum.storage.db_clock import database_time

log = logging.getLogger("keyquorum.clock")

DEFAULT_MAX_SKEW = 5.0
"""Seconds a node's clock may differ from the database's and still run the jobs."""


@dataclass(frozen=True)
class ClockReading:
    """One comparison of this node's clock with the database's."""

    skew: float  # this node's clock minus the database's, seconds (positive: ahead)
    uncertainty: float  # half the measuring query's round trip, seconds
    database_now: float  # the database's time when read (what the jobs take as now)
    bound: float  # max_clock_skew

    @property
    def within_bound(self) -> bool:
        """Whether the skew is within the bound even at the far end of the uncertainty."""
        return abs(self.skew) + self.uncertainty <= self.bound


class ClockGuard:
    """Measures the skew (on PostgreSQL) and remembers the last reading for health."""

    def __init__(self, engine: Engine, clock: Clock, bound: float = DEFAULT_MAX_SKEW) -> None:
        self._engine = engine
        self._clock = clock
        self.bound = bound
        self._lock = threading.Lock()
        self.last: ClockReading | None = None  # None: never measured, or SQLite

    @property
    def shared(self) -> bool:
        """Whether there is a database clock to compare with (PostgreSQL)."""
        return self._engine.dialect.name == "postgresql"

    def health(self) -> ClockHealth | None:
        """The last reading for ``GET /v1/sys/health`` (None on SQLite)."""
        if not self.shared:
            return None
        last = self.last
        if last is None:
            return ClockHealth(None, None, self.bound, None)
        return ClockHealth(last.skew, last.uncertainty, self.bound, last.within_bound)

    def measure(self) -> ClockReading | None:
        """Compare the clocks now (None on SQLite); logs when the verdict changes."""
        if not self.shared:
            return None
        with self._engine.connect() as conn:
            before = self._clock.now()
            database = database_time(conn) + world_advance(self._clock)
            after = self._clock.now()
        reading = ClockReading(skew=(before + after) / 2 - database,
                               uncertainty=max(after - before, 0.0) / 2,
                               database_now=database, bound=self.bound)
        with self._lock:
            previous, self.last = self.last, reading
        was_within = previous is None or previous.within_bound
        if was_within and not reading.within_bound:
            log.error("this node's clock is %+.1f s off the database's (bound %.1f s): it "
                      "runs no scheduled job (destruction, rotation, expiry, checkpoint) "
                      "until its clock is fixed; other nodes run them", reading.skew,
                      self.bound)
        elif not was_within and reading.within_bound:
            log.warning("this node's clock is back within %.1f s of the database's "
                        "(%+.3f s): it runs scheduled jobs again", self.bound, reading.skew)
        return reading
