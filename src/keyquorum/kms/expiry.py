"""Imported key material that expires (ImportKeyMaterial ``KEY_MATERIAL_EXPIRES``).

AWS deletes expiring material at its ``ValidTo`` and the key is ``PendingImport``
until the same material is imported again. keyquorum does this in two places, both on
the service clock (``core.clock``, which ``--unsafe-test-clock`` moves):

- **at use**: ``MaterialExpiry`` is the key cache's use check, run before any version's
  material is used (KMS and native calls alike), so a call after ``ValidTo`` never uses
  the material even if the sweep has not run yet; it answers
  ``KMSInvalidStateException``, as AWS does for a key pending import;
- **by the scheduler**: ``sweep_expired`` deletes the material of every key past its
  ``ValidTo`` exactly as DeleteImportedKeyMaterial does (``kms.withdrawn.withdraw``:
  storage, and every worker's cache through the key's change event), audited as the
  scheduler with ``action: KeyMaterialExpired``. The expiry record leaves in that same
  transaction, so each expiry is acted on (and audited) once.
"""

from __future__ import annotations

import datetime
import logging
import threading
from typing import Any

from sqlalchemy import Engine

from keyquorum.clock import Clock
from keyquorum.errors import KeyquorumError
from keyquorum.keys.models import Key
from keyquorum.keys.states import KeyState
from keyquorum.kms.errors import KmsStateError, serialization, validation
from keyquorum.kms.imports import all_expiries, expiry_of, set_expiry
from keyquorum.kms.withdrawn import withdraw
from keyquorum.service.context import next_request_id, system_context
from keyquorum.service.core import Core
from keyquorum.storage import keys_repo

log = logging.getLogger("keyquorum.kms")
EXPIRES = "KEY_MATERIAL_EXPIRES"
DOES_NOT_EXPIRE = "KEY_MATERIAL_DOES_NOT_EXPIRE"
MAX_VALID_SECONDS = 365 * 24 * 3600
"""AWS: "The maximum value is 365 days from the request date"."""


def _timestamp(value: Any) -> float:
    """A JSON ``timestamp`` as AWS's JSON protocol sends it: epoch seconds (botocore's
    form), or an ISO 8601 text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise serialization("ValidTo must be a timestamp") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=datetime.UTC)
        return parsed.timestamp()
    raise serialization("ValidTo must be a timestamp")


def requested_expiry(model: str | None, valid_to: Any, now: float) -> float | None:
    """The ``ValidTo`` an ImportKeyMaterial asks for (None: the material does not expire),
    or AWS's ValidationException. ``model`` was checked against the enum already; AWS's
    default is ``KEY_MATERIAL_EXPIRES``, which needs a ``ValidTo``."""
    if (model or EXPIRES) == DOES_NOT_EXPIRE:
        if valid_to is not None:
            raise validation("ValidTo is not valid when ExpirationModel is "
                             "KEY_MATERIAL_DOES_NOT_EXPIRE; omit it")
        return None
    if valid_to is None:
        raise validation("ValidTo is required when ExpirationModel is KEY_MATERIAL_EXPIRES "
                         "(the default); send ExpirationModel KEY_MATERIAL_DOES_NOT_EXPIRE "
                         "for material that does not expire")
    when = _timestamp(valid_to)
    if when <= now:
        raise validation("ValidTo must be a future date and time")
    if when > now + MAX_VALID_SECONDS:
        raise validation("ValidTo must be at most 365 days from the request date")
    return when


def _refusal(key_id: str, valid_to: float) -> KmsStateError:
    when = datetime.datetime.fromtimestamp(valid_to, datetime.UTC)
    return KmsStateError(f"{key_id} is pending import: its imported key material expired "
                         f"at {when.isoformat()}; import the same key material again",
                         "KMSInvalidStateException")


class MaterialExpiry:
    """The key cache's use check (``KeyCache.use_check``): refuses an imported key whose
    material is past its ``ValidTo``.

    The hot path must not touch storage per call, so each key's expiry is remembered
    with the key revision it was read at: every change that sets or removes an expiry
    (import, re-import, deletion, the sweep) also moves the key's revision in the same
    transaction, and the cache installs the new revision after it commits, so a
    remembered expiry is re-read exactly when it may have changed (one small read, the
    first use after a change).
    """

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock
        self._seen: dict[str, tuple[int, float | None]] = {}
        self._lock = threading.Lock()

    def valid_to(self, key: Key) -> float | None:
        if key.origin != "imported":
            return None
        seen = self._seen.get(key.id)
        if seen is not None and seen[0] == key.revision:
            return seen[1]
        with self._engine.connect() as conn:
            when = expiry_of(conn, key.id)
        with self._lock:
            self._seen[key.id] = (key.revision, when)
        return when

    def expired(self, key: Key) -> bool:
        when = self.valid_to(key)
        return when is not None and self._clock.now() >= when

    def __call__(self, key: Key) -> None:
        if key.origin != "imported":  # (valid_to's own first test: no call per use)
            return
        when = self.valid_to(key)
        if when is not None and self._clock.now() >= when:
            raise _refusal(key.id, when)


def sweep_expired(core: Core, *, now: float | None = None) -> list[str]:
    """Delete the material of every key past its ``ValidTo``; the names of those done.

    A key scheduled for deletion is left (nothing uses it; after CancelKeyDeletion the
    next sweep takes the material); the record of a destroyed or missing key is dropped.
    A failure on one key (a concurrent change, a key rotated natively, which
    DeleteImportedKeyMaterial refuses too) is logged and retried on the next tick; the
    use check keeps refusing the key meanwhile. ``now`` (the scheduler gives the
    database's time on PostgreSQL) decides what has expired; by default the service
    clock.
    """
    now = core.clock.now() if now is None else now
    with core.engine.connect() as conn:
        due = [(key_id, when) for key_id, when in all_expiries(conn).items() if when <= now]
        keys = {key_id: keys_repo.get_key(conn, key_id=key_id) for key_id, _ in due}
    done: list[str] = []
    for key_id, when in due:
        key = keys[key_id]
        if key is None or key.state is KeyState.DESTROYED:
            with core.engine.begin() as conn:
                set_expiry(conn, key_id, None, now)
            continue
        if key.state is KeyState.DESTROY_SCHEDULED:
            continue
        ctx = system_context(next_request_id())
        ctx.detail.update(api="aws-kms", action="KeyMaterialExpired",
                          valid_to=datetime.datetime.fromtimestamp(
                              when, datetime.UTC).isoformat())
        try:
            withdraw(core, ctx, key)
        except KeyquorumError as exc:
            log.warning("expiring the imported material of key %s failed: %s", key_id,
                        exc.code)
            continue
        done.append(key.name)
    return done
