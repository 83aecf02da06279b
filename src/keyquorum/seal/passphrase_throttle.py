"""Bound online guessing of the passphrase seal.

``POST /v1/sys/unseal {"passphrase"}`` needs no token (a sealed service has no
way to check one), so anyone who reaches the port may guess. Argon2id already
makes each guess cost ~64 MiB and a fraction of a second; this throttle adds
what the hash cannot:

* one attempt at a time per process: a flood of guesses cannot run many
  Argon2id computations (and their memory) at once; a second attempt while one
  runs is refused with ``rate_limited`` rather than queued;
* after ``free_failures`` wrong passphrases in a row, each further attempt must
  wait twice as long as the one before (1 s, 2 s, 4 s … capped at
  ``max_delay``), refused with ``rate_limited`` and a ``retry_after`` until then.

A right passphrase resets the count. Counts are per process (per worker with
``--workers N``) and in memory: a restart forgets them, which costs an attacker
a restart each time, something they cannot do from the network. Shamir shares
are not throttled here: a wrong share is refused alone and cannot be guessed.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from keyquorum.errors import RateLimited, WrongPassphrase

FREE_FAILURES = 3
MAX_DELAY_SECONDS = 300.0


class PassphraseThrottle:
    """Serialises passphrase attempts and slows down repeated wrong ones."""

    def __init__(self, now: Callable[[], float], *, free_failures: int = FREE_FAILURES,
                 max_delay: float = MAX_DELAY_SECONDS) -> None:
        self._now = now
        self._free_failures = free_failures
        self._max_delay = max_delay
        self._running = threading.Lock()
        self._state = threading.Lock()
        self._failures = 0
        self._not_before: float | None = None

    @property
    def failures(self) -> int:
        with self._state:
            return self._failures

    @contextmanager
    def attempt(self) -> Iterator[None]:
        """Run one attempt; ``WrongPassphrase`` inside counts as a failure and is re-raised."""
        self._check_wait()
        if not self._running.acquire(blocking=False):
            raise RateLimited("another passphrase attempt is running; try again shortly",
                              retry_after=1)
        try:
            yield
        except WrongPassphrase:
            self._failed()
            raise
        else:
            with self._state:
                self._failures = 0
                self._not_before = None
        finally:
            self._running.release()

    def _check_wait(self) -> None:
        with self._state:
            if self._not_before is None:
                return
            left = self._not_before - self._now()
        if left > 0:
            raise RateLimited("too many wrong passphrases; wait before trying again",
                              retry_after=max(1, math.ceil(left)))

    def _failed(self) -> None:
        with self._state:
            self._failures += 1
            over = self._failures - self._free_failures
            if over <= 0:
                return
            delay = min(self._max_delay, float(2 ** min(over - 1, 30)))
            self._not_before = self._now() + delay

