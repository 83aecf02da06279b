"""The database's own clock: the one time every node sharing a PostgreSQL agrees on.

``clock_timestamp()`` (not ``now()``, which is frozen at the start of a transaction)
read in its own statement, as seconds since the epoch.
"""

from __future__ import annotations

from sqlalchemy import Connection, text


def database_time(conn: Connection) -> float:
    """Seconds since the epoch, UTC, on the PostgreSQL server's clock."""
    value = conn.execute(text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one()
    return float(value)
