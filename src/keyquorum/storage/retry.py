"""Run again the work PostgreSQL aborted for a transient conflict (deadlock, serialization).

Nodes of a cluster change the same rows at once. The lock order of
``keys_repo.lock_key`` keeps the usual changes from deadlocking, but a group
transaction (``group_commit``) holds the rows of every change in it, in the order
the changes arrived, so two nodes' groups over the same two keys can still meet
in opposite orders. PostgreSQL then aborts one of them (SQLSTATE 40P01). Its
work was rolled back whole, so running it again from the start is safe, and is
what PostgreSQL's manual asks of applications.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import TypeVar

from keyquorum.storage.errors import transient_conflict

T = TypeVar("T")

log = logging.getLogger(__name__)

TRIES = 5
"""Attempts in all: a conflict that outlives them is answered 503, not retried forever."""


def retrying(work: Callable[[], T], *, tries: int = TRIES) -> T:
    """``work()``; run again, after a short random pause, while it fails with a
    transient conflict (at most ``tries`` attempts, then its error is raised).

    ``work`` must open its own transaction: it is repeated from the start.
    """
    for attempt in range(1, tries + 1):
        try:
            return work()
        except Exception as exc:
            reason = transient_conflict(exc)
            if reason is None or attempt == tries:
                raise
            log.info("%s; running the transaction again (attempt %d of %d)", reason,
                     attempt + 1, tries)
            pause_before_retry(attempt)
    raise AssertionError("unreachable")


def pause_before_retry(attempt: int) -> None:
    """Up to 5, 10, 15 ... ms of jitter after ``attempt``, so the two sides of a
    conflict do not meet again in step."""
    time.sleep(secrets.randbelow(5_000 * attempt) / 1e6)
