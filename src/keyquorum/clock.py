"""Injectable time, so tests can move the clock past rotation and deletion dates.

The service never calls ``time.time()`` directly: it asks its ``Clock``.
``OffsetClock`` is the system clock plus an offset that only a test server
(``--unsafe-test-clock``) lets a root token move forward.

Two different things move a test clock: ``advance`` is time passing (for the test's
whole world, the database's time included: ``world_advance`` tells the clock-skew
guard how far), and ``skew_by`` makes this one node's clock wrong, ahead or behind,
as a host whose NTP failed would be (``service.clock_skew`` must notice that one).
"""

from __future__ import annotations

import math
import threading
import time
from datetime import UTC, datetime
from typing import Protocol

from keyquorum.errors import InvalidRequest

MAX_TEST_OFFSET = 100 * 365 * 86400.0
"""How far ahead of real time the test clock may run: a hundred years. Dates the
service computes from it (plus durations, themselves at most a hundred years) stay
far below year 9999, past which they could not be formatted."""


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch, UTC."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


class OffsetClock:
    """System time plus a forward-only offset (tests only)."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._skew = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.time() + self._offset + self._skew

    @property
    def advanced(self) -> float:
        """Seconds ``advance`` has moved time forward (not the skew)."""
        return self._offset

    def skew_by(self, seconds: float) -> None:
        """Make this node's clock wrong by ``seconds`` more (negative: behind), without
        time passing: what a host with a broken clock would read (tests only)."""
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) \
                or not math.isfinite(seconds) or abs(seconds) > 86400:
            raise InvalidRequest("a test clock's skew is a finite number of seconds, at "
                                 "most a day either way")
        with self._lock:
            self._skew += seconds

    def advance(self, seconds: float) -> None:
        """Move forward by ``seconds``; never back, and never past ``MAX_TEST_OFFSET`` ahead."""
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) \
                or not math.isfinite(seconds) or seconds < 0:
            raise InvalidRequest("the test clock moves forward only, by a finite number of "
                                 "seconds")
        with self._lock:
            room = MAX_TEST_OFFSET - self._offset
            if seconds > room:
                raise InvalidRequest("the test clock may run at most 100 years ahead of real "
                                     f"time: it can advance at most {room:.0f} s more")
            self._offset += seconds


def world_advance(clock: Clock) -> float:
    """How far a test clock has moved time for the world this node sees: the database's
    own time is taken as moved as far, so a test can make keys due across nodes. Zero
    for every real clock."""
    return clock.advanced if isinstance(clock, OffsetClock) else 0.0


def rfc3339(timestamp: float | None) -> str | None:
    """Epoch seconds as an RFC 3339 UTC string (API.md's time format)."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat().replace("+00:00", "Z")
