"""Vault transit's per-key settings: one row per key that has changed them.

A key without a row answers Vault's defaults (``deletion_allowed`` false,
``min_encryption_version`` 0), so keys made through the native API need no row.
Rows are written only inside the audited key update that changes them
(``KeyLifecycle.update(..., also=...)``), never on their own.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update

from keyquorum.storage.schema import vault_transit_keys


@dataclass(frozen=True, slots=True)
class TransitSettings:
    """The settings Vault keeps on a transit key and keyquorum's key model has not."""

    deletion_allowed: bool = False
    min_encryption_version: int = 0


DEFAULTS = TransitSettings()


def get_settings(conn: Connection, key_id: str) -> TransitSettings:
    """The key's settings, or Vault's defaults when it has no row."""
    row = conn.execute(select(vault_transit_keys)
                       .where(vault_transit_keys.c.key_id == key_id)).first()
    if row is None:
        return DEFAULTS
    return TransitSettings(deletion_allowed=bool(row.deletion_allowed),
                           min_encryption_version=int(row.min_encryption_version))


def put_settings(conn: Connection, key_id: str, settings: TransitSettings, now: float) -> None:
    """Store the key's settings (insert or replace), in the caller's transaction."""
    values = {"deletion_allowed": settings.deletion_allowed,
              "min_encryption_version": settings.min_encryption_version, "updated_at": now}
    changed = conn.execute(update(vault_transit_keys)
                           .where(vault_transit_keys.c.key_id == key_id).values(**values))
    if not changed.rowcount:
        conn.execute(insert(vault_transit_keys), {"key_id": key_id, **values})
