"""Named system entries: seal configuration and the sealed barrier keyring."""

from __future__ import annotations

from sqlalchemy import Connection, select

from keyquorum.storage.schema import system_entries


def get_entry(conn: Connection, name: str) -> bytes | None:
    query = select(system_entries.c.value).where(system_entries.c.name == name)
    return conn.execute(query).scalar()


def insert_entry(conn: Connection, name: str, value: bytes, now: float) -> None:
    """Create an entry that must not exist yet (IntegrityError if it does)."""
    conn.execute(system_entries.insert().values(name=name, value=value, updated_at=now))
