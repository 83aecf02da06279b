"""Named system entries: seal configuration, the sealed barrier keyring, small settings."""

from __future__ import annotations

from sqlalchemy import Connection, select

from keyquorum.storage.schema import system_entries


def get_entry(conn: Connection, name: str) -> bytes | None:
    query = select(system_entries.c.value).where(system_entries.c.name == name)
    return conn.execute(query).scalar()


def entries_with_prefix(conn: Connection, prefix: str) -> dict[str, bytes]:
    """Every entry whose name starts with ``prefix``, name → value, in name order."""
    rows = conn.execute(select(system_entries.c.name, system_entries.c.value)
                        .where(system_entries.c.name.startswith(prefix, autoescape=True))
                        .order_by(system_entries.c.name))
    return {str(name): bytes(value) for name, value in rows}


def insert_entry(conn: Connection, name: str, value: bytes, now: float) -> None:
    """Create an entry that must not exist yet (IntegrityError if it does)."""
    conn.execute(system_entries.insert().values(name=name, value=value, updated_at=now))


def put_entry(conn: Connection, name: str, value: bytes, now: float) -> None:
    """Create or replace an entry (for settings that change; not for the seal or keyring)."""
    changed = conn.execute(system_entries.update().where(system_entries.c.name == name)
                           .values(value=value, updated_at=now)).rowcount
    if not changed:
        conn.execute(system_entries.insert().values(name=name, value=value, updated_at=now))
