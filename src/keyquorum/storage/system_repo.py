"""Named system entries: seal configuration, the sealed barrier keyring, small settings."""

from __future__ import annotations

from sqlalchemy import Connection, and_, delete, select

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
    if not update_entry(conn, name, value, now):
        conn.execute(system_entries.insert().values(name=name, value=value, updated_at=now))


def update_entry(conn: Connection, name: str, value: bytes, now: float) -> bool:
    """Replace the value of an existing entry; False if there is none."""
    return bool(conn.execute(system_entries.update().where(system_entries.c.name == name)
                             .values(value=value, updated_at=now)).rowcount)


def swap_entry(conn: Connection, name: str, expected: bytes, value: bytes, now: float) -> bool:
    """Replace the entry only if it still holds ``expected`` (compare-and-set); False if not."""
    return bool(conn.execute(system_entries.update().where(and_(
        system_entries.c.name == name, system_entries.c.value == expected))
        .values(value=value, updated_at=now)).rowcount)


def lock_entry(conn: Connection, name: str) -> None:
    """Take the write lock on an entry for the rest of the caller's transaction.

    The row is touched (``updated_at`` set to itself) before anything reads it: that
    takes SQLite's write lock or PostgreSQL's row lock, so steps from different
    workers on one entry run one by one.
    """
    conn.execute(system_entries.update().where(system_entries.c.name == name)
                 .values(updated_at=system_entries.c.updated_at))


def delete_entry(conn: Connection, name: str) -> bool:
    """Remove an entry; False if there was none."""
    return bool(conn.execute(delete(system_entries).where(system_entries.c.name == name))
                .rowcount)
