"""Rate limits for the few routes anyone may call without a token (review F14).

Unseal, the custodians' challenges and the automatic-seal retry answer without a
token: a sealed service cannot check one, and custodians hold shares, not tokens.
``WindowLimit`` bounds how often each may run in a sliding window, per client
address *and* in total: one address cannot use up what the others need, and
many addresses together cannot make the service do unbounded work. Counts are
per process and in memory (a restart forgets them; an attacker cannot restart
the server from the network), and the table of addresses is bounded: the
oldest is forgotten first.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from collections.abc import Callable

from keyquorum.errors import RateLimited

MAX_CLIENTS = 4096


class WindowLimit:
    """At most ``per_client`` events per client and ``total`` in all, per ``window`` seconds."""

    def __init__(self, now: Callable[[], float], *, per_client: int, total: int,
                 window: float, what: str, max_clients: int = MAX_CLIENTS) -> None:
        self._now = now
        self._per_client = per_client
        self._total = total
        self._window = window
        self._what = what
        self._max_clients = max_clients
        self._clients: OrderedDict[str, deque[float]] = OrderedDict()
        self._all: deque[float] = deque()
        self._lock = threading.Lock()

    def take(self, client: str | None) -> None:
        """Count one event for ``client``, or raise ``RateLimited`` (with ``retry_after``)."""
        self._count(client, refuse=True)

    def check(self, client: str | None) -> None:
        """Raise ``RateLimited`` if ``client`` (or everyone) is at the limit; count nothing.

        With ``note``, for limits on failures: a caller is refused once its failures
        (or everyone's) reach the limit, and what succeeds is never counted.
        """
        self._count(client, refuse=True, record=False)

    def note(self, client: str | None) -> None:
        """Count one event for ``client`` without refusing it (a failure that happened)."""
        self._count(client, refuse=False)

    def _count(self, client: str | None, *, refuse: bool, record: bool = True) -> None:
        key = client or "unknown"
        with self._lock:
            now = self._now()
            since = now - self._window
            while self._all and self._all[0] <= since:
                self._all.popleft()
            mine = self._clients.get(key, deque())
            while mine and mine[0] <= since:
                mine.popleft()
            for events, limit, whose in ((mine, self._per_client, "from this address"),
                                         (self._all, self._total, "in all")):
                if refuse and len(events) >= limit:
                    wait = max(1, math.ceil(events[0] + self._window - now))
                    raise RateLimited(f"too many {self._what} {whose}; try again later",
                                      retry_after=wait)
            if not record:
                return
            mine.append(now)
            self._all.append(now)
            self._clients[key] = mine
            self._clients.move_to_end(key)
            while len(self._clients) > self._max_clients:
                self._clients.popitem(last=False)


class OpenLimit:
    """At most ``per_client`` open items per client and ``total`` in all (until released
    or expired): what one address holds, not how often it asks, is what it can deny others."""

    def __init__(self, now: Callable[[], float], *, per_client: int, total: int, what: str,
                 max_clients: int = MAX_CLIENTS) -> None:
        self._now = now
        self._per_client = per_client
        self._total = total
        self._what = what
        self._max_clients = max_clients
        self._open: OrderedDict[str, dict[str, float]] = OrderedDict()  # client -> id -> expiry
        self._lock = threading.Lock()

    def take(self, client: str | None, item: str, expires_at: float) -> None:
        """Hold ``item`` for ``client`` until ``expires_at``, or raise ``RateLimited``."""
        key = client or "unknown"
        with self._lock:
            now = self._now()
            for held in self._open.values():
                for done in [i for i, end in held.items() if end <= now]:
                    del held[done]
            mine = self._open.get(key, {})
            everyone = [end for held in self._open.values() for end in held.values()]
            for ends, limit, whose in ((list(mine.values()), self._per_client,
                                        "from this address"),
                                       (everyone, self._total, "in all")):
                if len(ends) >= limit:
                    wait = max(1, math.ceil(min(ends) - now))
                    raise RateLimited(f"too many open {self._what} {whose}; answer one or "
                                      "try again later", retry_after=wait)
            mine[item] = expires_at
            self._open[key] = mine
            self._open.move_to_end(key)
            while len(self._open) > self._max_clients:
                self._open.popitem(last=False)

    def release(self, item: str) -> None:
        """``item`` was answered (or refused): it no longer counts against anyone."""
        with self._lock:
            for held in self._open.values():
                held.pop(item, None)
