"""Token rows: a token's SHA-256 hash, its public accessor and its policies; no rules.

The token text itself is never given to this module: it stores and finds tokens by
hash. Every function takes the caller's connection, so a token made at init or
revoked by a request shares the transaction of its audit record.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, insert, or_, select, update

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
    orphan: bool = False
    """Not revoked with ``created_by`` (only a root holder may mint one)."""


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
                    revoked_at=row.revoked_at, orphan=bool(row.orphan))


def insert_token(conn: Connection, row: TokenRow) -> None:
    """Store a new token (``IntegrityError`` if its accessor or hash exists)."""
    conn.execute(_INSERT, {
        "accessor": row.accessor, "token_hash": row.token_hash, "name": row.name,
        "policies": json.dumps(list(row.policies)), "created_at": row.created_at,
        "created_by": row.created_by, "expires_at": row.expires_at,
        "revoked_at": row.revoked_at, "orphan": row.orphan})


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


def live_tokens(conn: Connection, now: float) -> list[TokenRow]:
    """Every token neither revoked nor expired at ``now`` (who can act: dual control's count)."""
    query = select(tokens).where(tokens.c.revoked_at.is_(None),
                                 or_(tokens.c.expires_at.is_(None), tokens.c.expires_at > now))
    return [_from_row(row) for row in conn.execute(query)]


def unrevoked_children(conn: Connection, parents: Sequence[str]) -> list[TokenRow]:
    """The unrevoked tokens that any of ``parents`` created (``created_by``), orphans
    left out: they are the ones a parent's revocation takes along."""
    if not parents:
        return []
    query = (select(tokens).where(tokens.c.created_by.in_(list(parents)),
                                  tokens.c.revoked_at.is_(None), tokens.c.orphan.is_(False))
             .order_by(tokens.c.created_at, tokens.c.accessor))
    return [_from_row(row) for row in conn.execute(query)]
