"""DeleteImportedKeyMaterial: imported material taken back until the same material is
imported again (AWS's ``PendingImport`` after a deletion).

The caller who imported material holds a copy: AWS lets them delete it from the key
(nothing encrypted under it opens meanwhile) and bring it back later, and only the
*same* material brings it back. keyquorum does the same without a second kind of key:

- The native key stays (same id, name, versions and audit history) and is disabled;
  its one version is suspended (the state machine's reversible stop), its material is
  erased from storage, and ``destroyed_at`` records when. ``destroyed_at`` is what
  makes every worker drop the version's loaded handle when the key's change is
  announced (``KeyCache``), so the material leaves memory too, not only the disk.
- A barrier-encrypted system entry, ``kms/withdrawn/<KeyId>``, keeps what restoring
  needs: whether the key was enabled, and a key check value of the material
  (HMAC-SHA256 keyed by the material over a fixed label: without the material it
  says nothing about it).
- ImportKeyMaterial with a fresh import token compares the check value in constant
  time (another material: ``IncorrectKeyMaterialException``), writes the material
  back, clears ``destroyed_at``, resumes the version and restores the key's state.

Only keys made by an import, with their one imported version, can do this: a key with
versions keyquorum generated (rotated natively) is refused, so generated material is
never erased this way. Both steps are the import ceremony: permission ``import`` and
dual control's ``import`` action.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Connection

from keyquorum.crypto.mac import MacKey
from keyquorum.keys.models import Key
from keyquorum.keys.states import (
    KeyState,
    VersionState,
    next_key_state,
    next_version_state,
    resume_version_state,
)
from keyquorum.kms.errors import KmsRequestError, KmsStateError, unsupported
from keyquorum.kms.imports import set_expiry
from keyquorum.seal.barrier import Barrier
from keyquorum.service.changes import KeyChanged
from keyquorum.service.context import RequestContext
from keyquorum.service.core import Core
from keyquorum.service.keycache import material_path
from keyquorum.storage import keys_repo, system_repo

WITHDRAWN_PREFIX = "kms/withdrawn/"
_CHECK_LABEL = b"keyquorum kms: the same imported key material\x00"


@dataclass(frozen=True)
class Withdrawn:
    """What restoring a key needs; stored under the barrier."""

    key_id: str
    was_enabled: bool
    check: str  # hex key check value of the material
    withdrawn_at: float

    def to_bytes(self) -> bytes:
        return json.dumps({"key_id": self.key_id, "was_enabled": self.was_enabled,
                           "check": self.check, "withdrawn_at": self.withdrawn_at}).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Withdrawn:
        raw = json.loads(data)
        return cls(str(raw["key_id"]), bool(raw["was_enabled"]), str(raw["check"]),
                   float(raw["withdrawn_at"]))


def _path(key_id: str) -> str:
    return WITHDRAWN_PREFIX + key_id


def _check_value(key_id: str, material: bytes) -> str:
    return MacKey("hmac-sha256", material).mac(_CHECK_LABEL + key_id.encode()).hex()


def is_withdrawn(conn: Connection, key_id: str) -> bool:
    return system_repo.get_entry(conn, _path(key_id)) is not None


def find_withdrawn(conn: Connection, barrier: Barrier, key_id: str) -> Withdrawn | None:
    blob = system_repo.get_entry(conn, _path(key_id))
    return None if blob is None else Withdrawn.from_bytes(barrier.decrypt(_path(key_id), blob))


def _only_version(key: Key) -> int:
    if key.origin != "imported":
        raise unsupported("DeleteImportedKeyMaterial applies to keys whose material was "
                          "imported (Origin EXTERNAL); disable or schedule the deletion "
                          "of this one")
    if len(key.versions) != 1:
        raise unsupported("this key has versions keyquorum generated as well as the "
                          "imported one; disable it (DisableKey) instead")
    return key.versions[0].version


def withdraw(core: Core, ctx: RequestContext, key: Key, *,
             facts: Mapping[str, str] | None = None) -> None:
    """Erase the imported material (storage and every worker's cache); keep the key.

    DeleteImportedKeyMaterial and the expiry of the material (``kms.expiry``) both come
    here; the material's expiry record goes in the same transaction, so an expiry is
    acted on once. ``facts`` go on the record (the approval the deletion used)."""
    number = _only_version(key)
    if key.state not in (KeyState.ENABLED, KeyState.DISABLED):
        raise KmsStateError(f"{key.id} is {key.state.value}", "KMSInvalidStateException")
    barrier = core.barrier()
    now = core.clock.now()
    with core.changes.audited(ctx, "import", key=key.name, events=(KeyChanged(key.id),),
                              detail=facts) as change:
        conn = change.conn
        keys_repo.lock_key(conn, key.id)  # the key's row before its version's
        if is_withdrawn(conn, key.id):
            raise KmsStateError(f"{key.id} is pending import", "KMSInvalidStateException")
        stored = key.version(number)
        assert stored is not None
        suspended = next_version_state(stored.state, "suspend")  # active/deactivated only
        blob = keys_repo.get_material(conn, key.id, number)
        if blob is None:
            raise KmsStateError(f"{key.id} has no key material", "KMSInvalidStateException")
        material = barrier.decrypt(material_path(key.id, number), blob)
        record = Withdrawn(key.id, key.state is KeyState.ENABLED,
                           _check_value(key.id, material), now)
        keys_repo.update_version(conn, key.id, number, state=suspended, material=None,
                                 destroyed_at=now)
        state = next_key_state(key.state, "disable") if key.state is KeyState.ENABLED \
            else key.state
        if not keys_repo.update_key(conn, key, key.evolve(state=state, updated_at=now)):
            raise KmsStateError("the key changed concurrently; retry",
                                "KMSInvalidStateException")
        system_repo.insert_entry(conn, _path(key.id),
                                 barrier.encrypt(_path(key.id), record.to_bytes()), now)
        set_expiry(conn, key.id, None, now)
        change.key_version = number
    core.keys.get(key.name).handles.clear()  # this worker at once; the others by the event


def restore(core: Core, ctx: RequestContext, key: Key, material: bytes,
            valid_to: float | None = None, *,
            facts: Mapping[str, str] | None = None) -> None:
    """Bring the same material back into a key that :func:`withdraw` emptied, expiring at
    ``valid_to`` (None: it does not expire), as this import asks; ``facts`` go on the
    record (the approval the import used)."""
    number = _only_version(key)
    barrier = core.barrier()
    now = core.clock.now()
    with core.changes.audited(ctx, "import", key=key.name, events=(KeyChanged(key.id),),
                              detail=facts) as change:
        conn = change.conn
        keys_repo.lock_key(conn, key.id)  # the key's row before its version's
        record = find_withdrawn(conn, barrier, key.id)
        if record is None:
            raise KmsStateError("this key's material is already in keyquorum",
                                "KMSInvalidStateException")
        # Constant time: the check value is a MAC of the material.
        if not hmac.compare_digest(_check_value(key.id, material), record.check):
            raise KmsRequestError("this is not the key material that was imported into "
                                  "this key; import the same material",
                                  "IncorrectKeyMaterialException")
        stored = key.version(number)
        if stored is None or stored.state is not VersionState.SUSPENDED \
                or key.state is not KeyState.DISABLED:
            raise KmsStateError(f"{key.id} changed natively since its material was "
                                "deleted; it cannot be restored", "KMSInvalidStateException")
        keys_repo.update_version(conn, key.id, number,
                                 state=resume_version_state(number == key.primary_version),
                                 material=barrier.encrypt(material_path(key.id, number),
                                                          material),
                                 destroyed_at=None)
        state = next_key_state(key.state, "enable") if record.was_enabled else key.state
        if not keys_repo.update_key(conn, key, key.evolve(state=state, updated_at=now)):
            raise KmsStateError("the key changed concurrently; retry",
                                "KMSInvalidStateException")
        system_repo.delete_entry(conn, _path(key.id))
        set_expiry(conn, key.id, valid_to, now)
        change.key_version = number
