"""One runner at a time for background jobs across every node on one database.

On PostgreSQL a job runs under a session advisory lock taken with
``pg_try_advisory_lock`` on a connection of its own: a node that finds the lock
taken skips the job this time, and a node that dies while holding it loses it
with its session, so the next node's next tick runs the job. On SQLite there is
one server (``--workers`` runs the scheduler in one worker only): always granted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, func, select


def lock_id(name: str) -> int:
    """A job name as a signed 64-bit advisory lock id (stable across nodes and versions)."""
    digest = hashlib.sha256(f"keyquorum/job/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def job_lock(engine: Engine, name: str) -> Iterator[bool]:
    """Whether this process holds the cluster-wide lock ``name`` for the block."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    number = lock_id(name)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        held = bool(conn.execute(select(func.pg_try_advisory_lock(number))).scalar())
        try:
            yield held
        finally:
            if held:
                conn.execute(select(func.pg_advisory_unlock(number)))
