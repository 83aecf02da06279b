"""Nodes on one PostgreSQL telling each other about changes: NOTIFY, LISTEN, and the
facts a node re-reads to catch a change whose notification it missed.

The notifications are a fast path only (``runtime/change_feed.py``): PostgreSQL
drops them for a node that is not connected at that moment, so every node also
compares, once a second, what its caches hold against these cheap reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from typing import Any

from sqlalchemy import Connection, func, select

from keyquorum.storage.schema import access_keys, keys, policies, system_entries, tokens


def notify(conn: Connection, channel: str, payload: str) -> None:
    """Send ``payload`` on ``channel`` when ``conn``'s transaction commits."""
    conn.execute(select(func.pg_notify(channel, payload)))


def listen(conn: Connection, channel: str) -> Any:
    """Start listening on ``channel``; the driver connection that receives (psycopg's
    ``notifies()``). ``conn`` must be in autocommit and kept open while listening."""
    if not channel.replace("_", "").isalnum():  # an identifier: never a parameter
        raise ValueError("a channel name is letters, digits and underscores")
    conn.exec_driver_sql(f"LISTEN {channel}")
    return conn.connection.dbapi_connection


_IDS_PER_QUERY = 1000


def key_revisions(conn: Connection, key_ids: Collection[str]) -> dict[str, int]:
    """Key id → revision for ``key_ids`` (the keys a node has cached; a key deleted since
    is simply absent). Only those: a node that reread every key's revision twice a
    second would pay for keys it never uses, and pay more as the store grows."""
    wanted = sorted(key_ids)
    found: dict[str, int] = {}
    for start in range(0, len(wanted), _IDS_PER_QUERY):
        chunk = wanted[start:start + _IDS_PER_QUERY]
        found.update((str(key_id), int(revision)) for key_id, revision in conn.execute(
            select(keys.c.id, keys.c.revision).where(keys.c.id.in_(chunk))))
    return found


def tokens_revoked_since(conn: Connection, since: float) -> list[str]:
    """Accessors of tokens revoked at or after ``since``."""
    return [str(a) for a in conn.execute(
        select(tokens.c.accessor).where(tokens.c.revoked_at >= since)).scalars()]


def access_keys_revoked_since(conn: Connection, since: float) -> list[str]:
    """Accessors of access keys revoked at or after ``since``."""
    return [str(a) for a in conn.execute(
        select(access_keys.c.accessor).where(access_keys.c.revoked_at >= since)).scalars()]


def policies_fingerprint(conn: Connection) -> str:
    """A digest of every stored policy (name and rules): any edit, addition or deletion
    changes it."""
    digest = hashlib.sha256()
    for name, rules in conn.execute(select(policies.c.name, policies.c.rules)
                                    .order_by(policies.c.name)):
        digest.update(f"{len(name)}:{name}{len(rules)}:{rules}".encode())
    return digest.hexdigest()


def entry_fingerprint(conn: Connection, name: str) -> str | None:
    """A digest of one system entry's stored value (None when there is none): tells a
    node that the entry changed without handing it the value."""
    value = conn.execute(select(system_entries.c.value)
                         .where(system_entries.c.name == name)).scalar_one_or_none()
    return None if value is None else hashlib.sha256(bytes(value)).hexdigest()
