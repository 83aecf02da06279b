"""Background work inside the server: due destructions and rotations, expired imported
key material (``kms.expiry``), last-use flushes, and signed audit checkpoints.

Runs on a timer thread while unsealed; of nodes sharing a PostgreSQL, one at a time
runs the jobs on shared state (``storage.job_lock``), judging what is due by the
database's clock, and a node whose own clock is off by more than ``max_clock_skew``
runs none of them (``service.clock_skew``). Each job is an ordinary audited
lifecycle change under the scheduler's identity, so it obeys the same state
machine and leaves the same trail as a person's request. ``tick()`` can be
called directly (the test clock does), and one failing key never stops the rest.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from keyquorum.errors import KeyquorumError
from keyquorum.failure_log import describe_failure
from keyquorum.kms.expiry import sweep_expired
from keyquorum.service.context import next_request_id, system_context
from keyquorum.service.core import Core
from keyquorum.service.lifecycle import KeyLifecycle
from keyquorum.storage import keys_repo
from keyquorum.storage.job_lock import job_lock
from keyquorum.storage.retry import retrying

log = logging.getLogger("keyquorum.scheduler")


@dataclass(frozen=True)
class TickReport:
    """What one scheduler tick did (key names only): read by the test clock's route."""

    destroyed: tuple[str, ...] = ()
    rotated: tuple[str, ...] = ()
    expired: tuple[str, ...] = ()  # imported material past its ValidTo, deleted
    checkpoint: int | None = None  # the seq of the audit checkpoint signed, if one was
    refused: str | None = None  # why this node ran no shared job ("clock-skew"), if so


class Scheduler:
    def __init__(self, core: Core, lifecycle: KeyLifecycle, interval: float) -> None:
        self.core = core
        self.lifecycle = lifecycle
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tick_lock = threading.Lock()
        self._last_checkpoint = core.clock.now()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="keyquorum-scheduler",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            if self.core.sealed:
                continue
            try:
                self.tick()
            except Exception as exc:  # keep the loop alive; the next tick retries
                log.error("scheduler tick failed: %s", describe_failure(exc))

    def tick(self) -> TickReport:
        """Run every due job once; return what was done (names only).

        The jobs on shared state run on one node of a cluster at a time (``job_lock``:
        a node that finds another running them skips this tick); flushing this node's
        own last-use times runs on every node."""
        idle = TickReport()
        with self._tick_lock:
            if self.core.sealed:
                return idle
            reading = self.core.clock_guard.measure()
            if reading is not None and not reading.within_bound:
                # Not even the lock: a node that took it and did nothing could hold the
                # jobs back from the nodes whose clocks are right.
                done = TickReport(refused="clock-skew")
            else:
                with job_lock(self.core.engine, "scheduler") as mine:
                    due_at = reading.database_now if reading is not None \
                        else self.core.clock.now()
                    done = self._shared_jobs(due_at) if mine else idle
            self.flush_last_used()
            return done

    def _shared_jobs(self, due_at: float) -> TickReport:
        """The jobs on shared state; ``due_at`` is the time that decides what is due (the
        database's on PostgreSQL, so every node would pick the same)."""
        now = due_at
        with self.core.engine.connect() as conn:
            due_destroy = keys_repo.due_for_destruction(conn, now)
            due_rotate = keys_repo.due_for_rotation(conn, now)
        destroyed = self._each(due_destroy, self.lifecycle.destroy)
        rotated = self._each(due_rotate, self.lifecycle.rotate)
        expired = sweep_expired(self.core, now=now)
        checkpoint = self._checkpoint_if_due(self.core.clock.now())  # this node's interval
        return TickReport(destroyed=tuple(destroyed), rotated=tuple(rotated),
                          expired=tuple(expired), checkpoint=checkpoint)

    def _checkpoint_if_due(self, now: float) -> int | None:
        """Sign the audit chain head every ``audit_checkpoint_interval`` if it moved."""
        if now - self._last_checkpoint < self.core.settings.audit_checkpoint_interval:
            return None
        self._last_checkpoint = now
        try:
            made = self.core.audit_trail.checkpoint(only_if_grown=True)
        except Exception as exc:  # the next interval retries
            log.error("audit checkpoint failed (%s)", type(exc).__name__)
            return None
        return None if made is None else made.seq

    def _each(self, key_ids: list[str], job: Any) -> list[str]:
        done: list[str] = []
        for key_id in key_ids:
            try:
                name = self.core.keys.get_by_id(key_id).key.name
                job(system_context(next_request_id()), name)
                done.append(name)
            except KeyquorumError as exc:
                log.warning("scheduled job on key %s failed: %s", key_id, exc.code)
        return done

    def flush_last_used(self) -> None:
        """Persist in-memory last-use times (metadata only; losing some on a crash is harmless)."""
        pending = self.core.keys.pending_use()
        if not pending:
            return

        def flush() -> None:
            with self.core.engine.begin() as conn:
                for key_id, per_version in pending:  # in id order: keys_repo.lock_key
                    keys_repo.record_last_used(conn, key_id, per_version)

        retrying(flush)
