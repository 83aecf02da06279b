"""KMS alias rows: ``alias/...`` → key id. ``alias/<native name>`` has no row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from keyquorum.storage.schema import kms_aliases


@dataclass(frozen=True, slots=True)
class AliasRow:
    name: str
    key_id: str
    created_at: float
    updated_at: float


def _from_row(row: Any) -> AliasRow:
    return AliasRow(name=row.name, key_id=row.key_id, created_at=row.created_at,
                    updated_at=row.updated_at)


def get_alias(conn: Connection, name: str) -> AliasRow | None:
    row = conn.execute(select(kms_aliases).where(kms_aliases.c.name == name)).first()
    return None if row is None else _from_row(row)


def insert_alias(conn: Connection, row: AliasRow) -> None:
    """Store a new alias (``IntegrityError`` if the name is taken)."""
    conn.execute(insert(kms_aliases), {"name": row.name, "key_id": row.key_id,
                                       "created_at": row.created_at,
                                       "updated_at": row.updated_at})


def retarget_alias(conn: Connection, name: str, key_id: str, now: float) -> bool:
    result = conn.execute(update(kms_aliases).where(kms_aliases.c.name == name)
                          .values(key_id=key_id, updated_at=now))
    return bool(result.rowcount)


def delete_alias(conn: Connection, name: str) -> bool:
    return bool(conn.execute(delete(kms_aliases).where(kms_aliases.c.name == name)).rowcount)


def list_aliases(conn: Connection, *, key_id: str | None = None) -> list[AliasRow]:
    query = select(kms_aliases).order_by(kms_aliases.c.name)
    if key_id is not None:
        query = query.where(kms_aliases.c.key_id == key_id)
    return [_from_row(row) for row in conn.execute(query)]
