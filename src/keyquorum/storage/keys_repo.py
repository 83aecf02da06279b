"""Key and version rows: reads and conditional writes, no rules.

Every function takes the caller's connection so a service can make several
changes (and their audit record) in one transaction.

The statements of the lifecycle path are built once, here, and given their values
as parameters: ``insert().values(**row)`` built a new statement per call, with a
bound parameter per column and a fresh cache key over all of them, which cost
more CPU (under the GIL) than SQLite spends on the row (260 µs for a key insert).
The reads and writes of every create and rotate (key and version rows) go further
and run compiled once per dialect on the connection's DBAPI cursor
(``storage/prepared.py``): a key insert 15 µs, a key lookup with its versions
about 30 µs, against 30 and 70 µs through Core with a parameter dict.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, select, update

from keyquorum.keys.models import Key, KeyVersion
from keyquorum.keys.states import KeyState, VersionState
from keyquorum.storage import system_repo
from keyquorum.storage.prepared import Prepared, Statements, cursor_of
from keyquorum.storage.schema import key_versions, keys

_VERSION_COLUMNS = [c for c in key_versions.c if c.name != "material"]

# WHERE parameters are named apart from the columns: an UPDATE's SET clause takes its
# columns from the parameter names, and SQLAlchemy reserves the column names for it.
_KEY_BY_NAME = select(keys).where(keys.c.name == bindparam("w_name"))
_KEY_BY_ID = select(keys).where(keys.c.id == bindparam("w_id"))
# FOR NO KEY UPDATE on PostgreSQL (what the row's own UPDATE takes; inserting a version,
# whose foreign key takes KEY SHARE, is not blocked by it); nothing on SQLite, whose
# write transaction already holds the whole database.
_LOCK_KEY_BY_NAME = _KEY_BY_NAME.with_for_update(key_share=True)
_LOCK_KEY_BY_ID = select(keys.c.id).where(keys.c.id == bindparam("w_id")) \
    .with_for_update(key_share=True)
_REVISION_OF = select(keys.c.revision).where(keys.c.id == bindparam("w_id"))
_VERSIONS_OF = (select(*_VERSION_COLUMNS).where(key_versions.c.key_id == bindparam("w_key_id"))
                .order_by(key_versions.c.version))
_INSERT_KEY = keys.insert()
_INSERT_VERSION = key_versions.insert()
_UPDATE_KEY = update(keys).where(and_(keys.c.id == bindparam("w_id"),
                                      keys.c.revision == bindparam("w_revision")))
_VERSION_ROW = and_(key_versions.c.key_id == bindparam("w_key_id"),
                    key_versions.c.version == bindparam("w_version"))
_UPDATE_VERSION = update(key_versions).where(_VERSION_ROW)
_RESERVE = update(key_versions).where(_VERSION_ROW).values(
    protect_reserved=key_versions.c.protect_reserved + bindparam("w_block"))
_RESERVED = select(key_versions.c.protect_reserved).where(_VERSION_ROW)
_MATERIAL = select(key_versions.c.material).where(_VERSION_ROW)
# Last use is metadata: it moves no revision (an optimistic lock is for state changes).
_KEY_LAST_USED = update(keys).where(keys.c.id == bindparam("w_id")).values(
    last_used_at=bindparam("w_last_used_at"))
_VERSION_LAST_USED = update(key_versions).where(_VERSION_ROW).values(
    last_used_at=bindparam("w_last_used_at"))

PAGE = 500
"""Keys read per query by ``iter_keys``."""

# The hot ones, run on the DBAPI cursor; a raw row is read as {column name: value}.
_KEY_COLUMNS = [c.name for c in keys.c]
_VERSION_NAMES = [c.name for c in _VERSION_COLUMNS]
_KEY_BY_NAME_RAW = Statements(_KEY_BY_NAME)
_KEY_BY_ID_RAW = Statements(_KEY_BY_ID)
_LOCK_KEY_BY_NAME_RAW = Statements(_LOCK_KEY_BY_NAME)
_LOCK_KEY_BY_ID_RAW = Statements(_LOCK_KEY_BY_ID)
_REVISION_OF_RAW = Statements(_REVISION_OF)
_VERSIONS_OF_RAW = Statements(_VERSIONS_OF)
_INSERT_KEY_RAW = Statements(_INSERT_KEY, _KEY_COLUMNS)
_INSERT_VERSION_RAW = Statements(_INSERT_VERSION, [c.name for c in key_versions.c])
_UPDATE_KEY_RAW = Statements(_UPDATE_KEY, [c for c in _KEY_COLUMNS if c != "id"])


def _version_from_row(row: Mapping[Any, Any]) -> KeyVersion:
    return KeyVersion(
        key_id=row["key_id"], version=row["version"], state=VersionState(row["state"]),
        created_at=row["created_at"], state_reason=row["state_reason"],
        public_key=row["public_key"], activated_at=row["activated_at"],
        deactivated_at=row["deactivated_at"], destroyed_at=row["destroyed_at"],
        protect_reserved=row["protect_reserved"] or 0, last_used_at=row["last_used_at"],
    )


def _key_from_row(row: Mapping[Any, Any], versions: tuple[KeyVersion, ...]) -> Key:
    return Key(
        id=row["id"], name=row["name"], spec=row["spec"], purpose=row["purpose"],
        state=KeyState(row["state"]), primary_version=row["primary_version"],
        min_decrypt_version=row["min_decrypt_version"], origin=row["origin"],
        exportable=bool(row["exportable"]), deletion_window_days=row["deletion_window_days"],
        created_at=row["created_at"], updated_at=row["updated_at"], revision=row["revision"],
        owner=row["owner"], description=row["description"],
        labels=json.loads(row["labels"] or "{}"), rotation_period=row["rotation_period"],
        next_rotation=row["next_rotation"], crypto_period=row["crypto_period"],
        usage_limit=row["usage_limit"], destroy_at=row["destroy_at"],
        state_before_deletion=row["state_before_deletion"], created_by=row["created_by"],
        last_used_at=row["last_used_at"], versions=versions,
    )


def _versions_of(conn: Connection, key_id: str) -> tuple[KeyVersion, ...]:
    statement = _VERSIONS_OF_RAW.on(conn)
    with cursor_of(conn) as cursor:
        cursor.execute(statement.sql, statement.params({"w_key_id": key_id}))
        rows = cursor.fetchall()
    return tuple(_version_from_row(dict(zip(_VERSION_NAMES, row, strict=True)))
                 for row in rows)


_CONSISTENT_READ_TRIES = 5


def get_key(conn: Connection, *, name: str | None = None, key_id: str | None = None) -> Key | None:
    """The key and its versions as of one revision.

    They are two statements, and outside a write transaction neither SQLite (no BEGIN
    before a SELECT) nor PostgreSQL (READ COMMITTED) reads them from one snapshot: a
    change committed between them gave a key whose row predates its versions (primary
    version 1 while version 1 was already deactivated), and an encrypt with it answered
    409. Every change to a key's versions moves its revision in the same transaction,
    so the revision is read again after the versions, and the read repeated if it moved.
    """
    if name is not None:
        return _read_key(conn, _KEY_BY_NAME_RAW.on(conn), {"w_name": name})
    return _read_key(conn, _KEY_BY_ID_RAW.on(conn), {"w_id": str(key_id)})


def get_key_for_change(conn: Connection, name: str) -> Key | None:
    """``get_key`` by name, with the key's row locked for the rest of the caller's
    transaction before anything is read (see :func:`lock_key` for why the row first)."""
    return _read_key(conn, _LOCK_KEY_BY_NAME_RAW.on(conn), {"w_name": name})


def _read_key(conn: Connection, statement: Prepared, params: dict[str, str]) -> Key | None:
    key: Key | None = None
    for _ in range(_CONSISTENT_READ_TRIES):
        with cursor_of(conn) as cursor:
            cursor.execute(statement.sql, statement.params(params))
            found = cursor.fetchone()
        if found is None:
            return None
        row = dict(zip(_KEY_COLUMNS, found, strict=True))
        key = _key_from_row(row, _versions_of(conn, row["id"]))
        if _revision_of(conn, key.id) == key.revision:
            return key
    return key  # (changing faster than it can be read: the newest read; its change
    #              events and the revision check bring the next)


def _revision_of(conn: Connection, key_id: str) -> int | None:
    statement = _REVISION_OF_RAW.on(conn)
    with cursor_of(conn) as cursor:
        cursor.execute(statement.sql, statement.params({"w_id": key_id}))
        found = cursor.fetchone()
    return None if found is None else int(found[0])


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
    return [_key_from_row(row._mapping, _versions_of(conn, row.id))
            for row in conn.execute(query)]


def iter_keys(conn: Connection, *, prefix: str | None = None, state: str | None = None,
              spec: str | None = None, owner: str | None = None, after: str | None = None,
              page: int = PAGE) -> Iterator[Key]:
    """Every key matching the filters, in name order, after ``after``: read ``page`` keys
    per query, so no query holds the whole table."""
    while True:
        batch = list_keys(conn, prefix=prefix, state=state, spec=spec, owner=owner,
                          after=after, limit=page)
        yield from batch
        if len(batch) < page:
            return
        after = batch[-1].name


def key_names(conn: Connection, *, state: KeyState) -> list[str]:
    """The names of the keys in ``state``, in name order (no versions are read)."""
    return [str(row.name) for row in conn.execute(
        select(keys.c.name).where(keys.c.state == state.value).order_by(keys.c.name))]


def insert_key(conn: Connection, key: Key) -> None:
    statement = _INSERT_KEY_RAW.on(conn)
    with cursor_of(conn) as cursor:
        cursor.execute(statement.sql, statement.params(_key_values(key)))


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
    values["w_id"] = before.id
    values["w_revision"] = before.revision
    statement = _UPDATE_KEY_RAW.on(conn)
    with cursor_of(conn) as cursor:
        cursor.execute(statement.sql, statement.params(values))
        return int(cursor.rowcount) == 1


def insert_version(conn: Connection, version: KeyVersion, material: bytes | None) -> None:
    statement = _INSERT_VERSION_RAW.on(conn)
    row = {
        "key_id": version.key_id, "version": version.version, "state": version.state.value,
        "state_reason": version.state_reason, "material": material,
        "public_key": version.public_key, "created_at": version.created_at,
        "activated_at": version.activated_at, "deactivated_at": version.deactivated_at,
        "destroyed_at": version.destroyed_at, "protect_reserved": version.protect_reserved,
        "last_used_at": version.last_used_at,
    }
    with cursor_of(conn) as cursor:
        cursor.execute(statement.sql, statement.params(row))


def update_version(conn: Connection, key_id: str, version: int, **values: Any) -> None:
    if not values:
        raise ValueError("update_version needs at least one column to set")
    unknown = set(values) - set(key_versions.c.keys())
    if unknown:  # the SET clause is taken from the parameter names: refuse a typo
        raise ValueError(f"key_versions has no column {', '.join(sorted(unknown))}")
    if "state" in values and isinstance(values["state"], VersionState):
        values["state"] = values["state"].value
    conn.execute(_UPDATE_VERSION, {**values, "w_key_id": key_id, "w_version": version})


def lock_key(conn: Connection, key_id: str) -> None:
    """Lock the key's row for the rest of the caller's transaction.

    The lock order for PostgreSQL, where nodes change one key at once: a transaction
    that writes a key's row and any of its versions' rows locks the key's row first,
    and one that touches several keys takes them in id order. Rotating (the old
    version's row, then the key's) while another node's group transaction held the
    key's row and wanted that version deadlocked (40P01) and answered 500.
    """
    statement = _LOCK_KEY_BY_ID_RAW.on(conn)
    with cursor_of(conn) as cursor:
        cursor.execute(statement.sql, statement.params({"w_id": key_id}))
        cursor.fetchall()


def record_last_used(conn: Connection, key_id: str, per_version: Mapping[int, float]) -> None:
    """Store when each version of a key was last used, and the latest as the key's.

    The key's row is written first and the versions in order: the lock order of
    :func:`lock_key`."""
    if not per_version:
        return
    conn.execute(_KEY_LAST_USED, {"w_id": key_id, "w_last_used_at": max(per_version.values())})
    for version in sorted(per_version):
        conn.execute(_VERSION_LAST_USED, {"w_key_id": key_id, "w_version": version,
                                          "w_last_used_at": per_version[version]})


def get_material(conn: Connection, key_id: str, version: int) -> bytes | None:
    return conn.execute(_MATERIAL, {"w_key_id": key_id, "w_version": version}).scalar()


def reserve_protects(conn: Connection, key_id: str, version: int, block: int) -> int:
    """Move the stored reservation up by ``block``; return the new ceiling."""
    where = {"w_key_id": key_id, "w_version": version}
    conn.execute(_RESERVE, {**where, "w_block": block})
    return int(conn.execute(_RESERVED, where).scalar_one())


_HOLDERS = "usage/holders/"
"""System entries ``usage/holders/<key id>/<version>``: how many processes hold an
unreleased block of that version's protect count (a crashed one never releases)."""


def release_protects(conn: Connection, key_id: str, version: int, unused: int) -> None:
    """Give back the unused part of a reservation (clean seal or shutdown): exact again."""
    conn.execute(_RESERVE, {"w_key_id": key_id, "w_version": version, "w_block": -unused})


def adjust_reservation_holders(conn: Connection, key_id: str, version: int, delta: int,
                               now: float) -> None:
    """Count a process in (+1, on its first reservation) or out (-1, when it releases)."""
    name = f"{_HOLDERS}{key_id}/{version}"
    system_repo.lock_entry(conn, name)
    current = system_repo.get_entry(conn, name)
    held = max(0, int(current or b"0") + delta)
    if held:
        system_repo.put_entry(conn, name, str(held).encode(), now)
    elif current is not None:
        system_repo.delete_entry(conn, name)


def reservation_holders(conn: Connection) -> dict[tuple[str, int], int]:
    """(key id, version) → processes holding an unreleased reservation, where any."""
    held: dict[tuple[str, int], int] = {}
    for name, value in system_repo.entries_with_prefix(conn, _HOLDERS).items():
        key_id, _sep, version = name[len(_HOLDERS):].rpartition("/")
        held[(key_id, int(version))] = int(value)
    return held


def due_for_destruction(conn: Connection, now: float) -> list[str]:
    return [row.id for row in conn.execute(select(keys.c.id).where(and_(
        keys.c.state == KeyState.DESTROY_SCHEDULED.value, keys.c.destroy_at <= now)))]


def due_for_rotation(conn: Connection, now: float) -> list[str]:
    return [row.id for row in conn.execute(select(keys.c.id).where(and_(
        keys.c.state == KeyState.ENABLED.value, keys.c.next_rotation.is_not(None),
        keys.c.next_rotation <= now)))]
