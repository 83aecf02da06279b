"""Token rows: a token's SHA-256 hash, its public accessor and its policies; no rules.

The token text itself is never given to this module: it stores and finds tokens by
hash. Every function takes the caller's connection, so a token made at init or
revoked by a request shares the transaction of its audit record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from keyquorum.storage.schema import tokens


@dataclass(frozen=True, slots=True)
class TokenRow:
    accessor: str
    token_hash: bytes = field(repr=False)
    name: str | None
    policies: tuple[str, ...]
    created_at: float
    created_by: str | None
    expires_at: float | None
    revoked_at: float | None


_INSERT = insert(tokens)
_BY_HASH = select(tokens).where(tokens.c.token_hash == bindparam("w_hash"))
_BY_ACCESSOR = select(tokens).where(tokens.c.accessor == bindparam("w_accessor"))
# Conditional on not being revoked yet: a second revocation keeps the first time.
_REVOKE = (update(tokens).where(tokens.c.accessor == bindparam("w_accessor"),
                                tokens.c.revoked_at.is_(None))
           .values(revoked_at=bindparam("w_now")))


def _from_row(row: Any) -> TokenRow:
    return TokenRow(accessor=row.accessor, token_hash=bytes(row.token_hash), name=row.name,
                    policies=tuple(json.loads(row.policies)), created_at=row.created_at,
                    created_by=row.created_by, expires_at=row.expires_at,
                    revoked_at=row.revoked_at)


def insert_token(conn: Connection, row: TokenRow) -> None:
    """Store a new token (``IntegrityError`` if its accessor or hash exists)."""
    conn.execute(_INSERT, {
        "accessor": row.accessor, "token_hash": row.token_hash, "name": row.name,
        "policies": json.dumps(list(row.policies)), "created_at": row.created_at,
        "created_by": row.created_by, "expires_at": row.expires_at,
        "revoked_at": row.revoked_at})


def find_by_hash(conn: Connection, digest: bytes) -> TokenRow | None:
    """The token whose hash is ``digest`` (revoked or expired ones too), or None."""
    row = conn.execute(_BY_HASH, {"w_hash": digest}).first()
    return None if row is None else _from_row(row)


def find_by_accessor(conn: Connection, accessor: str) -> TokenRow | None:
    """The token named by ``accessor`` (revoked or expired ones too), or None."""
    row = conn.execute(_BY_ACCESSOR, {"w_accessor": accessor}).first()
    return None if row is None else _from_row(row)


def revoke_token(conn: Connection, accessor: str, now: float) -> bool:
    """Mark the token revoked at ``now``; False if it is unknown or already revoked."""
    return bool(conn.execute(_REVOKE, {"w_accessor": accessor, "w_now": now}).rowcount)
