"""Bound online guessing of the passphrase seal.

``POST /v1/sys/unseal {"passphrase"}`` needs no token (a sealed service has no
way to check one), so anyone who reaches the port may guess. Argon2id already
makes each guess cost ~64 MiB and a fraction of a second; this throttle adds
what the hash cannot:

* one attempt at a time per process: a flood of guesses cannot run many
  Argon2id computations (and their memory) at once; a second attempt while one
  runs is refused with ``rate_limited`` rather than queued;
* after ``free_failures`` wrong passphrases in a row *from one client address*,
  each further attempt from that address must wait twice as long as the one
  before (1 s, 2 s, 4 s … capped at ``max_delay``), refused with ``rate_limited``
  and a ``retry_after`` until then. Other addresses are not slowed by it, so an
  anonymous guesser cannot lock the operator out (review F14);
* in all, at most ``global_failures`` wrong passphrases per ``global_window``
  seconds from every address together: many addresses cannot guess faster.

A right passphrase resets its address's count. Counts are per process (per
worker with ``--workers N``) and in memory, for at most ``MAX_CLIENTS`` addresses
(the oldest forgotten first): a restart forgets them, which costs an attacker a
restart each time, something they cannot do from the network. Shamir shares are
not throttled here: a wrong share is refused alone and cannot be guessed.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from keyquorum.errors import RateLimited, WrongPassphrase

MAX_CLIENTS = 4096  # addresses remembered; the oldest is forgotten first
FREE_FAILURES = 3
MAX_DELAY_SECONDS = 300.0
GLOBAL_FAILURES = 30
GLOBAL_WINDOW_SECONDS = 60.0


@dataclass
class _Client:
    failures: int = 0
    not_before: float | None = None


class PassphraseThrottle:
    """Serialises passphrase attempts and slows down repeated wrong ones, per address."""

    def __init__(self, now: Callable[[], float], *, free_failures: int = FREE_FAILURES,
                 max_delay: float = MAX_DELAY_SECONDS,
                 global_failures: int = GLOBAL_FAILURES,
                 global_window: float = GLOBAL_WINDOW_SECONDS) -> None:
        self._now = now
        self._free_failures = free_failures
        self._max_delay = max_delay
        self._global_failures = global_failures
        self._global_window = global_window
        self._running = threading.Lock()
        self._state = threading.Lock()
        self._clients: OrderedDict[str, _Client] = OrderedDict()
        self._recent: deque[float] = deque()  # times of wrong passphrases, every address

    def failures(self, client: str | None = None) -> int:
        with self._state:
            state = self._clients.get(client or "unknown")
            return state.failures if state else 0

    @contextmanager
    def attempt(self, client: str | None = None) -> Iterator[None]:
        """Run one attempt; ``WrongPassphrase`` inside counts as a failure and is re-raised."""
        key = client or "unknown"
        self._check_wait(key)
        if not self._running.acquire(blocking=False):
            raise RateLimited("another passphrase attempt is running; try again shortly",
                              retry_after=1)
        try:
            yield
        except WrongPassphrase:
            self._failed(key)
            raise
        else:
            with self._state:
                self._clients.pop(key, None)
        finally:
            self._running.release()

    def _check_wait(self, key: str) -> None:
        with self._state:
            now = self._now()
            while self._recent and self._recent[0] <= now - self._global_window:
                self._recent.popleft()
            if len(self._recent) >= self._global_failures:
                left = self._recent[0] + self._global_window - now
                raise RateLimited("too many wrong passphrases from all addresses; wait "
                                  "before trying again", retry_after=max(1, math.ceil(left)))
            state = self._clients.get(key)
            if state is None or state.not_before is None:
                return
            left = state.not_before - now
        if left > 0:
            raise RateLimited("too many wrong passphrases; wait before trying again",
                              retry_after=max(1, math.ceil(left)))

    def _failed(self, key: str) -> None:
        with self._state:
            now = self._now()
            self._recent.append(now)
            state = self._clients.setdefault(key, _Client())
            self._clients.move_to_end(key)
            while len(self._clients) > MAX_CLIENTS:
                self._clients.popitem(last=False)
            state.failures += 1
            over = state.failures - self._free_failures
            if over <= 0:
                return
            delay = min(self._max_delay, float(2 ** min(over - 1, 30)))
            state.not_before = now + delay
