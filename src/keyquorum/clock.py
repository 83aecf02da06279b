"""Injectable time, so tests can move the clock past rotation and deletion dates.

The service never calls ``time.time()`` directly: it asks its ``Clock``.
``OffsetClock`` is the system clock plus an offset that only a test server
(``--unsafe-test-clock``) lets a root token move forward.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol


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
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the test clock only moves forward")
        with self._lock:
            self._offset += seconds


def rfc3339(timestamp: float | None) -> str | None:
    """Epoch seconds as an RFC 3339 UTC string (API.md's time format)."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat().replace("+00:00", "Z")
