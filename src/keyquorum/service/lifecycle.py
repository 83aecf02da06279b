"""Key lifecycle: create, update, rotate, enable/disable, revoke, deletion and destruction.

Every change runs under the core's write lock in one transaction that also
writes its audit record, and is conditional on the key's revision, so two
writers can never both move the primary version or half-apply a change.
Concurrent changes share that transaction (``storage/group_commit.py``): each
in its own savepoint, one commit (one fsync) for all, each answered only after
it. After commit the cache is refreshed from storage.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from keyquorum.audit.in_transaction import write_audit_in
from keyquorum.errors import Conflict, InvalidRequest, KeyquorumError, KeyStateError, NotFound
from keyquorum.keys.models import Key, KeyVersion
from keyquorum.keys.names import validate_key_name
from keyquorum.keys.specs import get_spec, resolve_purpose
from keyquorum.keys.states import (
    NEW_KEY_STATE,
    NEW_VERSION_STATE,
    affected_by,
    cancel_deletion_state,
    destroy_one_state,
    destroyed_state,
    is_active,
    is_deleted,
    next_key_state,
    next_version_state,
    resume_or_refuse,
)
from keyquorum.service.context import RequestContext
from keyquorum.service.core import Core
from keyquorum.service.keycache import material_path
from keyquorum.storage import keys_repo
from keyquorum.storage.group_commit import GroupCommit

MIN_DELETION_DAYS = 7
MAX_DELETION_DAYS = 30
MAX_USAGE_LIMIT = 2**53 - 1
"""The largest usage_limit: every JSON parser reads it exactly (JavaScript's
Number.MAX_SAFE_INTEGER), it fits the BIGINT column, and no version lives to use it up."""
MAX_VERSION = 2**31 - 1
"""The largest version number: versions are INTEGER columns (32-bit on PostgreSQL)."""
MAX_STORED_INT = 2**63 - 1
"""What a BIGINT column holds on SQLite and PostgreSQL: the bound of any other integer."""
REVOKE_REASONS = ("compromised", "superseded", "retired", "other")


@dataclass(frozen=True)
class NewKey:
    """What a create asks for, already checked (``api/bodies_keys.CreateKey``):
    durations in seconds, labels as a plain map, bounds within the storage columns."""

    name: str
    spec: str
    purpose: str | None = None
    description: str | None = None
    owner: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    exportable: bool = False
    rotation_period: int | None = None
    crypto_period: int | None = None
    usage_limit: int | None = None
    deletion_window_days: int | None = None
    key_id: str | None = None
    """The key's id when the caller chose it (the KMS API names a key ``kms/<its id>``);
    a fresh UUID otherwise."""
    material: bytes | None = field(default=None, repr=False)
    """Key material brought by the caller (KMS ImportKeyMaterial), already unwrapped and
    checked against the spec; the key's origin is then ``imported``. None: generated."""


@dataclass(frozen=True)
class KeyChanges:
    """The fields an update sets (only those given), already checked and converted."""

    fields: Mapping[str, Any]


def destroy_versions_params(below: int) -> dict[str, int]:
    """What an approval of ``destroy_versions`` is for (native route and Vault's trim
    alike): the approval names the bound, so it is not one for a schedule-deletion."""
    return {"destroy_versions_below": below}


def _deletion_days(value: object, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not (
            MIN_DELETION_DAYS <= value <= MAX_DELETION_DAYS):
        raise InvalidRequest(f"{field} must be {MIN_DELETION_DAYS}-{MAX_DELETION_DAYS} days")
    return value


_LOST_RACE_TRIES = 5
"""Times a change is applied again after another process changed the key under it."""


class _LostRace(Conflict):
    """The key's revision moved between this change's read and its write."""


_USAGE_ROTATION_TRIES = 3
"""A usage-limit rotation lost to concurrent changes of the key this many times fails."""


class KeyLifecycle:
    def __init__(self, core: Core) -> None:
        self.core = core
        # A group's leader holds the write lock for the group and its cache refreshes.
        self._commits = GroupCommit(core.engine, lock=core.write_lock)

    # -- helpers -------------------------------------------------------------------------

    def _new_version(self, conn: Connection, key: Key, number: int, now: float,
                     material: bytes | None = None) -> KeyVersion:
        spec = get_spec(key.spec)
        material = spec.generate() if material is None else material
        public = spec.load(material).public_pem() if spec.asymmetric else None
        version = KeyVersion(key_id=key.id, version=number, state=NEW_VERSION_STATE,
                             created_at=now, activated_at=now, public_key=public)
        blob = self.core.barrier().encrypt(material_path(key.id, number), material)
        keys_repo.insert_version(conn, version, blob)
        return version

    def _mutate(self, ctx: RequestContext, name: str, operation: str,
                change: Callable[[Connection, Key, float], tuple[Key, int | None]],
                facts: dict[str, str] | None = None) -> Key:
        """Apply ``change`` to the stored key in one audited, revision-checked transaction.

        ``facts`` go on the audit record (the reason of a revoke, the versions a trim
        erased: ``change`` may add to them as it runs). A refusal carries them too,
        so a refused destroy is told apart from a refused deletion schedule.
        """
        try:
            return self._mutate_audited(ctx, name, operation, change, facts)
        except KeyquorumError as exc:
            if facts:
                exc.audit_detail = {**facts, **(exc.audit_detail or {})}
            raise

    def _mutate_audited(self, ctx: RequestContext, name: str, operation: str,
                        change: Callable[[Connection, Key, float], tuple[Key, int | None]],
                        facts: dict[str, str] | None) -> Key:
        self.core.barrier()

        def apply(conn: Connection) -> Key:
            now = self.core.clock.now()
            key = keys_repo.get_key_for_change(conn, name)
            if key is None:
                raise NotFound(f"no key named {name}")
            changed, version = change(conn, key, now)
            changed = changed.evolve(updated_at=now)
            if not keys_repo.update_key(conn, key, changed):
                raise _LostRace("the key changed concurrently; retry")
            write_audit_in(self.core.audit, conn, ctx, operation=operation,
                           key=name, key_version=version, now=now, detail=facts)
            fresh = keys_repo.get_key(conn, key_id=key.id)
            assert fresh is not None
            return fresh

        # Another node (or worker) changing the same key between this change's read and
        # its write makes the revision check fail; on one node the write lock orders such
        # changes instead. So the change is read and applied again on the newer key, as
        # if it had queued behind the other (two rotations make two versions, a second
        # disable meets a disabled key), and only a key that keeps changing answers 409.
        for attempt in range(_LOST_RACE_TRIES):
            try:
                return self._commits.run(apply, after_commit=self.core.key_changed)
            except (_LostRace, IntegrityError) as exc:  # IntegrityError: the same new
                if attempt == _LOST_RACE_TRIES - 1:     # version number taken elsewhere
                    raise Conflict("the key changed concurrently; retry") from exc
                # A few milliseconds of jitter, so racing nodes do not meet again in step.
                time.sleep(secrets.randbelow(5_000 * (attempt + 1)) / 1e6)
        raise AssertionError("unreachable")

    # -- operations ------------------------------------------------------------------------

    def create(self, ctx: RequestContext, request: NewKey, *,
               facts: Mapping[str, str] | None = None) -> Key:
        """A new key; ``facts`` go on its record (the approval an import used)."""
        name = validate_key_name(request.name)
        spec = get_spec(request.spec)
        purpose = resolve_purpose(spec, request.purpose)
        rotation_period = request.rotation_period
        window = _deletion_days(
            request.deletion_window_days or self.core.settings.default_deletion_window_days,
            "deletion_window_days")
        self.core.barrier()

        def change(conn: Connection) -> Key:
            now = self.core.clock.now()
            key = Key(
                id=request.key_id or str(uuid.uuid4()), name=name, spec=spec.name,
                purpose=purpose,
                state=NEW_KEY_STATE, primary_version=1, min_decrypt_version=1,
                origin="generated" if request.material is None else "imported",
                exportable=request.exportable,
                deletion_window_days=window,
                created_at=now, updated_at=now, revision=1,
                owner=request.owner, description=request.description,
                labels=dict(request.labels), rotation_period=rotation_period,
                next_rotation=now + rotation_period if rotation_period else None,
                crypto_period=request.crypto_period, usage_limit=request.usage_limit,
                created_by=ctx.accessor,
            )
            keys_repo.insert_key(conn, key)
            self._new_version(conn, key, 1, now, request.material)
            write_audit_in(self.core.audit, conn, ctx, operation="create",
                           key=name, key_version=1, now=now, detail=facts)
            fresh = keys_repo.get_key(conn, key_id=key.id)
            assert fresh is not None
            return fresh

        try:
            return self._commits.run(change, after_commit=self.core.key_changed)
        except IntegrityError as exc:
            raise Conflict(f"a key named {name} already exists") from exc

    def update(self, ctx: RequestContext, name: str, request: KeyChanges, *,
               also: Callable[[Connection, Key, float], None] | None = None) -> Key:
        """Change the key's fields; ``also`` writes a front end's own settings of the key
        (Vault transit's) in the same transaction as the change and its audit record."""
        if not request.fields and also is None:
            raise InvalidRequest("nothing to update")
        given = dict(request.fields)
        rotation = given.pop("rotation_period", None)
        rotation_given = "rotation_period" in request.fields
        min_decrypt = given.pop("min_decrypt_version", None)
        changes = given

        def change(conn: Connection, key: Key, now: float) -> tuple[Key, int | None]:
            self._require_not_deleted(key)
            updated = key.evolve(**changes)
            if rotation_given:
                updated = updated.evolve(rotation_period=rotation,
                                         next_rotation=now + rotation if rotation else None)
            if min_decrypt is not None:
                if min_decrypt > key.primary_version:
                    raise Conflict("min_decrypt_version cannot exceed the primary version "
                                   f"({key.primary_version})")
                updated = updated.evolve(min_decrypt_version=min_decrypt)
            if also is not None:
                also(conn, updated, now)
            return updated, None

        return self._mutate(ctx, name, "update", change)

    @staticmethod
    def _require_not_deleted(key: Key) -> None:
        if is_deleted(key.state):
            raise KeyStateError(f"the key is {key.state.value}")

    def _rotate_in(self, conn: Connection, key: Key, now: float,
                   material: bytes | None = None) -> Key:
        self._require_not_deleted(key)
        old = key.version(key.primary_version)
        if old is not None and is_active(old.state):
            keys_repo.update_version(conn, key.id, old.version,
                                     state=next_version_state(old.state, "deactivate"),
                                     deactivated_at=now)
        number = max(v.version for v in key.versions) + 1
        self._new_version(conn, key, number, now, material)
        return key.evolve(primary_version=number, next_rotation=(
            now + key.rotation_period if key.rotation_period else None))

    def rotate(self, ctx: RequestContext, name: str, material: bytes | None = None, *,
               facts: Mapping[str, str] | None = None) -> Key:
        """A new primary version: fresh material, or the caller's (``material``: already
        unwrapped and checked against the spec, for keys whose origin is ``imported``).
        ``facts`` go on the record (the approval an import used)."""
        def change(conn: Connection, key: Key, now: float) -> tuple[Key, int | None]:
            if material is not None and key.origin != "imported":
                raise Conflict(f"key {name} was generated here: a version with imported "
                               "material goes only to a key whose material was imported")
            rotated = self._rotate_in(conn, key, now, material)
            return rotated, rotated.primary_version

        return self._mutate(ctx, name, "rotate", change, dict(facts or {}))

    def set_enabled(self, ctx: RequestContext, name: str, enabled: bool,
                    version: int | None = None) -> Key:
        operation = "enable" if enabled else "disable"
        number = version

        def change(conn: Connection, key: Key, now: float) -> tuple[Key, int | None]:
            if number is None:
                return key.evolve(state=next_key_state(key.state, operation)), None
            self._require_not_deleted(key)
            stored = key.version(number)
            if stored is None:
                raise NotFound(f"key {name} has no version {number}")
            if enabled:
                target = resume_or_refuse(stored.state, version=number,
                                          is_primary=number == key.primary_version)
            else:
                target = next_version_state(stored.state, "suspend")
            keys_repo.update_version(conn, key.id, number, state=target)
            return key, number

        return self._mutate(ctx, name, operation, change)

    def revoke(self, ctx: RequestContext, name: str, reason: str, *,
               version: int | None = None, note: str | None = None,
               facts: Mapping[str, str] | None = None) -> Key:
        """Revoke the key or one version; ``facts`` go on the record (the approval used)."""
        if reason not in REVOKE_REASONS:
            raise InvalidRequest(f"reason must be one of {', '.join(REVOKE_REASONS)}")
        number = version
        event = "compromise" if reason == "compromised" else "retire"
        recorded = {**(facts or {}), "reason": str(reason)}
        if note:
            recorded["note"] = note

        def change(conn: Connection, key: Key, now: float) -> tuple[Key, int | None]:
            self._require_not_deleted(key)
            # Revoking the whole key moves every version the event applies to (the state
            # machine says which); versions already past it stay.
            if number is None:
                moved = affected_by(event, {v.version: v.state for v in key.versions})
                targets = [key.version(n) for n in moved]
            else:
                targets = [key.version(number)]
            if number is not None and targets[0] is None:
                raise NotFound(f"key {name} has no version {number}")
            if not targets:
                raise KeyStateError(f"no version of key {name} can be revoked as {reason}")
            for stored in targets:
                assert stored is not None
                keys_repo.update_version(conn, key.id, stored.version,
                                         state=next_version_state(stored.state, event),
                                         state_reason=str(reason), deactivated_at=now)
            # Revoking one version that is primary moves the key to a fresh version so new
            # data is never protected by a revoked one; revoking the whole key leaves it with
            # no usable primary (protect is refused with key_state).
            if number is not None and number == key.primary_version:
                reloaded = keys_repo.get_key(conn, key_id=key.id)
                assert reloaded is not None
                return self._rotate_in(conn, reloaded.evolve(revision=key.revision), now), number
            return key, number

        return self._mutate(ctx, name, "revoke", change, recorded)

    def schedule_deletion(self, ctx: RequestContext, name: str, days: int | None, *,
                          facts: Mapping[str, str] | None = None) -> Key:
        """Destroy after ``days`` (the key's window if None); ``facts`` go on the record."""
        def change(_conn: Connection, key: Key, now: float) -> tuple[Key, int | None]:
            window = _deletion_days(days if days is not None else key.deletion_window_days,
                                    "days")
            state = next_key_state(key.state, "schedule_deletion")
            return key.evolve(state=state, destroy_at=now + window * 86400,
                              state_before_deletion=key.state.value), None

        return self._mutate(ctx, name, "delete", change, dict(facts or {}))

    def cancel_deletion(self, ctx: RequestContext, name: str) -> Key:
        def change(_conn: Connection, key: Key, _now: float) -> tuple[Key, int | None]:
            restored = cancel_deletion_state(key.state, key.state_before_deletion)
            return key.evolve(state=restored, destroy_at=None, state_before_deletion=None), None

        return self._mutate(ctx, name, "delete", change, {"action": "cancel-deletion"})

    def destroy(self, ctx: RequestContext, name: str) -> Key:
        """Erase every version's material; keep the metadata as a tombstone."""
        def change(conn: Connection, key: Key, now: float) -> tuple[Key, int | None]:
            state = next_key_state(key.state, "destroy")
            for stored in key.versions:
                target = destroyed_state(stored.state)
                if target is not None:
                    keys_repo.update_version(conn, key.id, stored.version, state=target,
                                             material=None, destroyed_at=now)
            return key.evolve(state=state, next_rotation=None), None

        key = self._mutate(ctx, name, "delete", change, {"action": "destroy"})
        loaded = self.core.keys.get(name)
        loaded.handles.clear()
        return key

    def destroy_versions(self, ctx: RequestContext, name: str, below: int, *,
                         facts: Mapping[str, str] | None = None) -> Key:
        """Erase the material of every version below ``below`` (Vault's trim) and keep
        their metadata; the key stays in use. ``below`` may not exceed the key's
        ``min_decrypt_version`` (the state machine's rule: only versions nothing can
        decrypt with are destroyed). One transaction and one audit record
        (``delete``, ``action: destroy-versions``, the versions erased, and ``facts``)."""
        if not isinstance(below, int) or isinstance(below, bool) or not 1 <= below <= MAX_VERSION:
            raise InvalidRequest(f"below must be a version number (1-{MAX_VERSION})")
        recorded = {**(facts or {}), "action": "destroy-versions", "below": str(below)}

        def change(conn: Connection, key: Key, now: float) -> tuple[Key, int | None]:
            self._require_not_deleted(key)
            if below > key.min_decrypt_version:
                raise KeyStateError(
                    f"below ({below}) cannot exceed the key's min_decrypt_version "
                    f"({key.min_decrypt_version}): raise min_decrypt_version first")
            erased: list[str] = []
            for stored in sorted(key.versions, key=lambda v: v.version):
                if stored.version >= below:
                    continue
                target = destroy_one_state(stored.state, version=stored.version,
                                           min_decrypt_version=key.min_decrypt_version)
                if target is not None:
                    keys_repo.update_version(conn, key.id, stored.version, state=target,
                                             material=None, destroyed_at=now)
                    erased.append(str(stored.version))
            recorded["versions"] = ",".join(erased)  # "" when nothing was left to erase
            return key, None

        return self._mutate(ctx, name, "delete", change, recorded)

    def rotate_for_usage(self, ctx: RequestContext, name: str, spent_version: int) -> None:
        """Rotate because ``spent_version`` reached its usage limit (unless already rotated).

        Another process counting in blocks of the same version (a worker, a cluster
        node) reaches the limit at about the same moment and rotates too: the loser's
        revision check fails (``Conflict``). That is "already rotated", not an error of
        the encrypt that got here (on PostgreSQL such encrypts answered 409 with uses
        spread over nodes). So the stored key is read again: if its primary moved on,
        that revision is installed here and nothing is written; if not, try again.
        """
        def change(conn: Connection, key: Key, now: float) -> tuple[Key, int | None]:
            if key.primary_version != spent_version:
                return key, key.primary_version
            rotated = self._rotate_in(conn, key, now)
            return rotated, rotated.primary_version

        for attempt in range(_USAGE_ROTATION_TRIES):
            try:
                self._mutate(ctx, name, "rotate", change, {"reason": "usage_limit"})
                return
            except Conflict:
                with self.core.engine.connect() as conn:
                    stored = keys_repo.get_key_for_change(conn, name)
                if stored is not None and stored.primary_version != spent_version:
                    self.core.keys.refresh(stored)  # its rotator announced it; use it now
                    return
                if attempt == _USAGE_ROTATION_TRIES - 1:
                    raise
