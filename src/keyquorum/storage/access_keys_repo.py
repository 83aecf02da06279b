"""Access-key rows (AWS SigV4 credentials): id, barrier-encrypted secret, policies.

The secret arrives here already encrypted by the barrier and leaves encrypted:
this module never sees it in the clear. Every function takes the caller's
connection, so a creation or revocation shares the transaction of its audit record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from keyquorum.storage.schema import access_keys


@dataclass(frozen=True, slots=True)
class AccessKeyRow:
    accessor: str
    access_key_id: str
    sealed_secret: bytes = field(repr=False)
    name: str | None
    policies: tuple[str, ...]
    created_at: float
    created_by: str | None
    expires_at: float | None
    revoked_at: float | None


_INSERT = insert(access_keys)
_BY_ID = select(access_keys).where(access_keys.c.access_key_id == bindparam("w_id"))
_BY_ACCESSOR = select(access_keys).where(access_keys.c.accessor == bindparam("w_accessor"))
_REVOKE = (update(access_keys).where(access_keys.c.accessor == bindparam("w_accessor"),
                                     access_keys.c.revoked_at.is_(None))
           .values(revoked_at=bindparam("w_now")))


def _from_row(row: Any) -> AccessKeyRow:
    return AccessKeyRow(accessor=row.accessor, access_key_id=row.access_key_id,
                        sealed_secret=bytes(row.secret), name=row.name,
                        policies=tuple(json.loads(row.policies)), created_at=row.created_at,
                        created_by=row.created_by, expires_at=row.expires_at,
                        revoked_at=row.revoked_at)


def insert_access_key(conn: Connection, row: AccessKeyRow) -> None:
    """Store a new access key (``IntegrityError`` if its accessor or id exists)."""
    conn.execute(_INSERT, {
        "accessor": row.accessor, "access_key_id": row.access_key_id,
        "secret": row.sealed_secret, "name": row.name,
        "policies": json.dumps(list(row.policies)), "created_at": row.created_at,
        "created_by": row.created_by, "expires_at": row.expires_at,
        "revoked_at": row.revoked_at})


def find_by_id(conn: Connection, access_key_id: str) -> AccessKeyRow | None:
    row = conn.execute(_BY_ID, {"w_id": access_key_id}).first()
    return None if row is None else _from_row(row)


def find_by_accessor(conn: Connection, accessor: str) -> AccessKeyRow | None:
    row = conn.execute(_BY_ACCESSOR, {"w_accessor": accessor}).first()
    return None if row is None else _from_row(row)


def list_access_keys(conn: Connection, *, include_revoked: bool = False
                     ) -> list[AccessKeyRow]:
    """Every access key, oldest first (revoked ones only when asked)."""
    query = select(access_keys).order_by(access_keys.c.created_at, access_keys.c.accessor)
    if not include_revoked:
        query = query.where(access_keys.c.revoked_at.is_(None))
    return [_from_row(row) for row in conn.execute(query)]


def revoke_access_key(conn: Connection, accessor: str, now: float) -> bool:
    """Mark it revoked at ``now``; False if unknown or already revoked."""
    return bool(conn.execute(_REVOKE, {"w_accessor": accessor, "w_now": now}).rowcount)
