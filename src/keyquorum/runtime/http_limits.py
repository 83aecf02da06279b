"""What one HTTP client may hold of a server process: time, header bytes, a connection.

uvicorn bounds only the quiet time *after* an answer (``timeout_keep_alive``, 5 s).
Before an answer nothing is bounded: a client that connects and sends nothing,
or drips its headers or its body, keeps its socket — and a file descriptor — for
as long as it likes. Enough of them (about 1,000 under systemd's default soft
limit of 1,024) and the process cannot accept anyone else: libuv then accepts
each new connection and drops it at once (reliability review F1). Headers had no
bound either (F5): httptools buffers a whole header however long it is.

The rules, enforced by :mod:`keyquorum.runtime.http_protocol`:

* **Headers in time.** A connection must deliver a complete request head within
  ``header_timeout`` (10 s) of connecting; on a kept-alive connection the clock
  starts at the next request's first byte (the quiet time before it stays
  uvicorn's ``timeout_keep_alive``). A connection that sent nothing is closed
  silently, one that sent part of a head gets 408. The deadline is absolute, not
  "between bytes": dripping a header line every few seconds does not extend it.
* **Bodies at a rate.** While a body arrives, the next piece must come within
  ``body_timeout`` (30 s), and once ``body_timeout`` has passed the body must
  average at least ``min_body_rate`` (1 KiB/s): each byte buys 1/rate seconds, as
  Apache's mod_reqtimeout does. A large upload at any honest speed is unaffected;
  one byte every five seconds is cut after ~30 s. Time during which *we* are not
  reading (flow control, a pipelined request waiting its turn, an unsent
  ``100 Continue``) is not counted against the client.
* **Header size.** At most ``max_headers`` (100) fields and ``max_header_bytes``
  (64 KiB) of names and values: 431; a request target over ``max_url_bytes``
  (8 KiB): 414. Raw bytes of an unfinished head are also counted as they arrive,
  so at most about one read past the limit is ever buffered.
* **A connection cap below the descriptor limit.** Each process holds at most
  :meth:`ConnectionTable.cap` connections: ``max_connections`` if set, never
  more than the soft ``RLIMIT_NOFILE`` less a reserve (:func:`descriptor_budget`)
  for the store (two descriptors per pooled SQLite connection, up to 16 of them),
  logs, audit sinks and the event loop. The limit is read at every new
  connection, so ``prlimit`` on a running server takes effect at once. At the cap
  a new connection does not wait and is not refused: the connection that has been
  quiet longest and is *not waiting for an answer* (reading a head, idle between
  requests, or still sending a body) is closed to make room. Legitimate clients
  send their request at once, so they are the most recently active and the last
  to go; an attacker's idle sockets are the first. Only when every open
  connection is waiting for an answer is the new one closed.

Refusing new connections at the cap (what uvicorn's ``limit_concurrency`` does,
with a 503, after accepting anyway) would hand the service to whoever opened
sockets first; closing the quietest keeps it with whoever is using it.
"""

from __future__ import annotations

import logging
import resource
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from keyquorum.config import Settings

log = logging.getLogger("keyquorum.http")

FD_RESERVE = 128
"""Descriptors never used for connections: store, logs, sinks, loop (at least this many)."""

_UNLIMITED = 1 << 20
_REPORT_EVERY = 60.0


@dataclass(frozen=True)
class HttpLimits:
    """The HTTP-layer limits of ``Settings``; its defaults are the settings' own."""

    header_timeout: float = Settings.header_timeout
    body_timeout: float = Settings.body_timeout
    min_body_rate: int = Settings.min_body_rate
    max_header_bytes: int = Settings.max_header_bytes
    max_headers: int = Settings.max_headers
    max_url_bytes: int = Settings.max_url_bytes
    max_connections: int | None = Settings.max_connections

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpLimits:
        return cls(header_timeout=settings.header_timeout, body_timeout=settings.body_timeout,
                   min_body_rate=settings.min_body_rate,
                   max_header_bytes=settings.max_header_bytes, max_headers=settings.max_headers,
                   max_url_bytes=settings.max_url_bytes, max_connections=settings.max_connections)

    @property
    def max_head_bytes(self) -> int:
        """Raw bytes an unfinished head may reach: target, fields, their ": " and CRLFs."""
        return self.max_url_bytes + self.max_header_bytes + 4 * self.max_headers + 1024


def soft_descriptor_limit() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return _UNLIMITED if soft < 0 or soft == resource.RLIM_INFINITY else soft


def descriptor_budget(soft_limit: int) -> int:
    """Connections a process allowed ``soft_limit`` descriptors may hold."""
    return max(16, soft_limit - max(FD_RESERVE, soft_limit // 8))


def cap_warning(limits: HttpLimits, soft_limit: int | None = None) -> str | None:
    """What to tell the operator when ``max_connections`` is above what the fd limit allows."""
    soft = soft_descriptor_limit() if soft_limit is None else soft_limit
    budget = descriptor_budget(soft)
    if limits.max_connections is None or limits.max_connections <= budget:
        return None
    return (f"max_connections {limits.max_connections} is more than the soft file-descriptor "
            f"limit of {soft} allows; at most {budget} connections per process will be kept "
            "(raise LimitNOFILE or ulimit -n)")


class Member(Protocol):
    """A connection as the table sees it."""

    @property
    def awaiting_answer(self) -> bool:
        """A request of this connection has fully arrived and is being answered."""

    def close_for_room(self) -> None:
        """Close now: the process needs the descriptor for a newer connection."""


class ConnectionTable:
    """One process's open connections, the longest quiet first."""

    def __init__(self, limits: HttpLimits,
                 soft_limit: Callable[[], int] = soft_descriptor_limit) -> None:
        self.limits = limits
        self._soft_limit = soft_limit
        self._open: OrderedDict[Member, None] = OrderedDict()
        self._events: Counter[str] = Counter()
        self._reported = -_REPORT_EVERY

    def __len__(self) -> int:
        return len(self._open)

    def cap(self) -> int:
        budget = descriptor_budget(self._soft_limit())
        configured = self.limits.max_connections
        return budget if configured is None else min(configured, budget)

    def admit(self, member: Member) -> bool:
        """Add ``member``, first closing the quietest idle connections while at the cap.

        False (nothing added) when every open connection is waiting for an answer.
        """
        cap = self.cap()
        while len(self._open) >= cap:
            victim = next((m for m in self._open if not m.awaiting_answer), None)
            if victim is None:
                self.note("refused at the cap")
                return False
            del self._open[victim]
            victim.close_for_room()
            self.note("closed to make room")
        self._open[member] = None
        return True

    def touch(self, member: Member) -> None:
        """``member`` sent something: it is now the most recently active."""
        if member in self._open:
            self._open.move_to_end(member)

    def discard(self, member: Member) -> None:
        self._open.pop(member, None)

    def note(self, event: str) -> None:
        """Count a cut or refusal; say so in the log at most once a minute (an attacker
        must not be able to flood it), the first one at once."""
        self._events[event] += 1
        now = time.monotonic()
        if now - self._reported < _REPORT_EVERY:
            return
        detail = ", ".join(f"{count} {what}" for what, count in sorted(self._events.items()))
        log.warning("keyquorum http: connections %s since the last such line (%d open, "
                    "at most %d; header timeout %gs, body timeout %gs)", detail,
                    len(self._open), self.cap(), self.limits.header_timeout,
                    self.limits.body_timeout)
        self._events.clear()
        self._reported = now
