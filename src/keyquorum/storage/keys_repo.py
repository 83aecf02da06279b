"""Key and version rows: reads and conditional writes, no rules.

Every function takes the caller's connection so a service can make several
changes (and their audit record) in one transaction.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, and_, func, select, update

from keyquorum.keys.models import Key, KeyVersion
from keyquorum.keys.states import KeyState, VersionState
from keyquorum.storage.schema import key_versions, keys

_VERSION_COLUMNS = [c for c in key_versions.c if c.name != "material"]


def _version_from_row(row: Any) -> KeyVersion:
    return KeyVersion(
        key_id=row.key_id, version=row.version, state=VersionState(row.state),
        created_at=row.created_at, state_reason=row.state_reason, public_key=row.public_key,
        activated_at=row.activated_at, deactivated_at=row.deactivated_at,
        destroyed_at=row.destroyed_at, protect_reserved=row.protect_reserved or 0,
        last_used_at=row.last_used_at,
    )


def _key_from_row(row: Any, versions: tuple[KeyVersion, ...]) -> Key:
    return Key(
        id=row.id, name=row.name, spec=row.spec, purpose=row.purpose, state=KeyState(row.state),
        primary_version=row.primary_version, min_decrypt_version=row.min_decrypt_version,
        origin=row.origin, exportable=bool(row.exportable),
        deletion_window_days=row.deletion_window_days, created_at=row.created_at,
        updated_at=row.updated_at, revision=row.revision, owner=row.owner,
        description=row.description, labels=json.loads(row.labels or "{}"),
        rotation_period=row.rotation_period, next_rotation=row.next_rotation,
        crypto_period=row.crypto_period, usage_limit=row.usage_limit, destroy_at=row.destroy_at,
        state_before_deletion=row.state_before_deletion, created_by=row.created_by,
        last_used_at=row.last_used_at, versions=versions,
    )


def _versions_of(conn: Connection, key_id: str) -> tuple[KeyVersion, ...]:
    rows = conn.execute(select(*_VERSION_COLUMNS).where(key_versions.c.key_id == key_id)
                        .order_by(key_versions.c.version))
    return tuple(_version_from_row(row) for row in rows)


def get_key(conn: Connection, *, name: str | None = None, key_id: str | None = None) -> Key | None:
    condition = keys.c.name == name if name is not None else keys.c.id == key_id
    row = conn.execute(select(keys).where(condition)).first()
    if row is None:
        return None
    return _key_from_row(row, _versions_of(conn, row.id))


def list_keys(conn: Connection, *, prefix: str | None, state: str | None, spec: str | None,
              owner: str | None, after: str | None, limit: int) -> list[Key]:
    query = select(keys).order_by(keys.c.name).limit(limit)
    conditions = []
    if prefix:
        conditions.append(func.substr(keys.c.name, 1, len(prefix)) == prefix)
    if state:
        conditions.append(keys.c.state == state)
    if spec:
        conditions.append(keys.c.spec == spec)
    if owner:
        conditions.append(keys.c.owner == owner)
    if after:
        conditions.append(keys.c.name > after)
    if conditions:
        query = query.where(and_(*conditions))
    return [_key_from_row(row, _versions_of(conn, row.id)) for row in conn.execute(query)]


def insert_key(conn: Connection, key: Key) -> None:
    conn.execute(keys.insert().values(**_key_values(key)))


def _key_values(key: Key) -> dict[str, Any]:
    return {
        "id": key.id, "name": key.name, "spec": key.spec, "purpose": key.purpose,
        "state": key.state.value, "primary_version": key.primary_version,
        "min_decrypt_version": key.min_decrypt_version, "owner": key.owner,
        "description": key.description, "labels": json.dumps(key.labels, sort_keys=True),
        "origin": key.origin, "exportable": key.exportable,
        "rotation_period": key.rotation_period, "next_rotation": key.next_rotation,
        "crypto_period": key.crypto_period,
        "usage_limit": key.usage_limit, "deletion_window_days": key.deletion_window_days,
        "destroy_at": key.destroy_at, "state_before_deletion": key.state_before_deletion,
        "created_at": key.created_at, "created_by": key.created_by,
        "updated_at": key.updated_at, "last_used_at": key.last_used_at,
        "revision": key.revision,
    }


def update_key(conn: Connection, before: Key, after: Key) -> bool:
    """Write ``after`` only if the row is still at ``before.revision`` (optimistic lock)."""
    values = _key_values(after)
    values.pop("id")
    values["revision"] = before.revision + 1
    result = conn.execute(update(keys).where(and_(keys.c.id == before.id,
                                                  keys.c.revision == before.revision))
                          .values(**values))
    return result.rowcount == 1


def insert_version(conn: Connection, version: KeyVersion, material: bytes | None) -> None:
    conn.execute(key_versions.insert().values(
        key_id=version.key_id, version=version.version, state=version.state.value,
        state_reason=version.state_reason, material=material, public_key=version.public_key,
        created_at=version.created_at, activated_at=version.activated_at,
        deactivated_at=version.deactivated_at, destroyed_at=version.destroyed_at,
        protect_reserved=version.protect_reserved, last_used_at=version.last_used_at,
    ))


def update_version(conn: Connection, key_id: str, version: int, **values: Any) -> None:
    if "state" in values and isinstance(values["state"], VersionState):
        values["state"] = values["state"].value
    conn.execute(update(key_versions).where(and_(key_versions.c.key_id == key_id,
                                                 key_versions.c.version == version))
                 .values(**values))


def get_material(conn: Connection, key_id: str, version: int) -> bytes | None:
    return conn.execute(select(key_versions.c.material).where(and_(
        key_versions.c.key_id == key_id, key_versions.c.version == version))).scalar()


def reserve_protects(conn: Connection, key_id: str, version: int, block: int) -> int:
    """Move the stored reservation up by ``block``; return the new ceiling."""
    conn.execute(update(key_versions).where(and_(
        key_versions.c.key_id == key_id, key_versions.c.version == version))
        .values(protect_reserved=key_versions.c.protect_reserved + block))
    return int(conn.execute(select(key_versions.c.protect_reserved).where(and_(
        key_versions.c.key_id == key_id, key_versions.c.version == version))).scalar_one())


def due_for_destruction(conn: Connection, now: float) -> list[str]:
    return [row.id for row in conn.execute(select(keys.c.id).where(and_(
        keys.c.state == KeyState.DESTROY_SCHEDULED.value, keys.c.destroy_at <= now)))]


def due_for_rotation(conn: Connection, now: float) -> list[str]:
    return [row.id for row in conn.execute(select(keys.c.id).where(and_(
        keys.c.state == KeyState.ENABLED.value, keys.c.next_rotation.is_not(None),
        keys.c.next_rotation <= now)))]
