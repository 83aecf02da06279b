"""The seal set of a running service: list and remove seals; open without shares.

Seals live in ``system_entries`` as ``seal/set/<id>`` (see ``keyquorum.seal.entry``);
Shamir (``seal/shamir``) is always there and is never removed here: it is the
recovery path. A seal is added only by the custodian ceremony of
``service.seal_change`` (a quorum of shares). Each change is stored together with
its audit record (one transaction), after dual control (``seal-change``) let it
through.

Automatic seals (PKCS#11, cloud KMS) are tried when the server starts (and on
``POST /v1/sys/unseal {"auto": true}``). The outcome of the last attempt of
each is kept in memory per process and shown in seal-status; with several
workers the one that tried tells the others. A seal that fails is logged in one
line naming the seal and the reason, never a secret, and the service stays
sealed for Shamir (or a passphrase) to open it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine

from keyquorum.audit.records import AuditRecord
from keyquorum.clock import rfc3339
from keyquorum.errors import (
    AuditUnavailable,
    KeyquorumError,
    NotFound,
    Sealed,
    SealRequired,
    SealUnavailable,
)
from keyquorum.seal import kinds
from keyquorum.seal.entry import SealEntry
from keyquorum.seal.passphrase_throttle import PassphraseThrottle
from keyquorum.seal.seal_set import (
    SEAL_PREFIX,
    SEAL_SET_PREFIX,
    SHAMIR_ENTRY,
    open_with_passphrase,
    stored_seals,
)
from keyquorum.seal.shamir import ShamirSealConfig
from keyquorum.seal.trust import SealTrust
from keyquorum.service.context import RequestContext, next_request_id
from keyquorum.service.limits import WindowLimit
from keyquorum.service.sys_values import SealStatus
from keyquorum.storage.system_repo import (
    delete_entry,
    entries_with_prefix,
)

if TYPE_CHECKING:
    from keyquorum.audit.log import AuditLog
    from keyquorum.clock import Clock
    from keyquorum.service.core import Core

log = logging.getLogger("keyquorum.seal")


def seal_entries(conn: Connection) -> dict[str, bytes]:
    """Every stored seal entry (Shamir and the seal set), name → stored value, by name."""
    return entries_with_prefix(conn, SEAL_PREFIX)


class SealSet:
    """The stored seals of one service and the last automatic attempt of each."""

    def __init__(self, engine: Engine, clock: Clock, audit: AuditLog,
                 changed: Callable[[], None] = lambda: None,
                 trust: SealTrust | None = None) -> None:
        self._engine = engine
        # What the server's config file lets a seal load or call; checked at add and at
        # every automatic open (stored entries are data: a restored store's included).
        self.trust = trust or SealTrust()
        self._clock = clock
        self._audit = audit
        # After a committed add or remove: reload the seal configuration here and tell the
        # sibling workers (the unit of work announces; routes never do).
        self._changed = changed
        self._attempts: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.passphrase_throttle = PassphraseThrottle(clock.now)
        # POST /v1/sys/unseal {"auto": true} needs no token and drives HSM/KMS calls:
        # one try per address per 30 s, three in all (review F14).
        self.auto_limit = WindowLimit(clock.now, per_client=1, total=3, window=30.0,
                                      what="automatic unseal attempts")

    def entries(self) -> dict[str, bytes]:
        with self._engine.connect() as conn:
            return seal_entries(conn)

    def seals(self) -> list[SealEntry]:
        return stored_seals(self.entries())

    def describe(self, config: ShamirSealConfig | None, *, with_params: bool = True
                 ) -> list[dict[str, Any]]:
        """Every seal, Shamir first: type, id, public parameters, last automatic attempt.

        ``with_params=False`` is the view for seal-status, which answers without a
        token: it names the seals and their last attempt but not where the HSM
        module, token, PIN file or KMS key are (``GET /v1/sys/seals`` shows those).
        """
        if config is None:
            return []
        described = [{"type": "shamir", "id": "shamir", "automatic": False,
                      "shares": config.shares, "threshold": config.threshold}]
        with self._lock:
            attempts = dict(self._attempts)
        for entry in self.seals():
            view = entry.describe()
            if not with_params:
                del view["params"]
            if entry.automatic:
                view["last_attempt"] = attempts.get(entry.id)
            described.append(view)
        return described

    # -- changes ---------------------------------------------------------------------------

    def check_removable(self, seal_id: str) -> SealEntry:
        """The seal to remove; Shamir and the last way back are refused."""
        if seal_id == "shamir":
            raise SealRequired("the Shamir seal is the recovery path and cannot be removed")
        entries = self.entries()
        raw = entries.get(SEAL_SET_PREFIX + seal_id)
        if raw is None:
            raise NotFound(f"no seal with id {seal_id!r}")
        if SHAMIR_ENTRY not in entries and len(stored_seals(entries)) <= 1:
            raise SealRequired("removing this seal would leave no way back to the root key")
        return SealEntry.from_json(raw)

    def remove(self, ctx: RequestContext, entry: SealEntry, *,
               facts: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Drop a seal; ``facts`` go on its record (the approval the removal used)."""
        with self._engine.begin() as conn:
            if not delete_entry(conn, SEAL_SET_PREFIX + entry.id):
                raise NotFound(f"no seal with id {entry.id!r}")
            self._record(conn, ctx, "sys:seal-remove", entry, facts=facts)
        with self._lock:
            self._attempts.pop(entry.id, None)
        self._changed()
        return {"id": entry.id, "type": entry.kind, "removed": True}

    def _record(self, conn: Connection, ctx: RequestContext, operation: str,
                entry: SealEntry, error: KeyquorumError | None = None, *,
                facts: Mapping[str, str] | None = None) -> None:
        """One audit record in the caller's transaction: the change and its record land together."""
        record = AuditRecord(time=self._clock.now(), request_id=ctx.request_id,
                             identity=ctx.accessor, operation=operation, key=None,
                             key_version=None, outcome="error" if error else "ok",
                             error_code=error.code if error else None, client=ctx.client,
                             detail={**ctx.detail, **(facts or {}), "seal": entry.id,
                                     "seal_type": entry.kind})
        try:
            self._audit.append_in(conn, [record])
        except AuditUnavailable:
            raise
        except Exception as exc:
            raise AuditUnavailable() from exc
        if error is None:
            ctx.audited = True

    # -- opening -----------------------------------------------------------------------------

    def open_passphrase(self, ctx: RequestContext, passphrase: str) -> bytes:
        with self.passphrase_throttle.attempt(ctx.client):
            return open_with_passphrase(self.seals(), passphrase)

    def try_automatic(self) -> tuple[SealEntry, bytes] | None:
        """The first automatic seal that opens, with the root key; every attempt audited."""
        for entry in self.seals():
            if not entry.automatic:
                continue
            ctx = RequestContext(request_id=next_request_id(), client="auto-unseal",
                                 detail={"method": "automatic"})
            try:
                root_key = kinds.open_automatic(entry, self.trust)
            except SealUnavailable as exc:
                log.error("auto-unseal: seal %s (%s) is unavailable (%s): %s; staying sealed "
                          "for Shamir shares or a passphrase", entry.id, entry.kind,
                          exc.details.get("reason"), exc.message)
                self._note(entry.id, ok=False, reason=str(exc.details.get("reason")),
                           message=exc.message)
                self._audit_attempt(ctx, entry, exc)
                continue
            self._note(entry.id, ok=True)
            return entry, root_key
        return None

    def audit_opened(self, entry: SealEntry) -> None:
        """Record that ``entry`` opened the service (before it opens: fail closed)."""
        ctx = RequestContext(request_id=next_request_id(), client="auto-unseal",
                             detail={"method": "automatic"})
        with self._engine.begin() as conn:
            self._record(conn, ctx, "sys:unseal", entry)

    def _audit_attempt(self, ctx: RequestContext, entry: SealEntry,
                       error: KeyquorumError) -> None:
        try:
            with self._engine.begin() as conn:
                self._record(conn, ctx, "sys:unseal", entry, error)
        except Exception as exc:  # the failure is logged already; sealed either way
            log.error("auto-unseal: could not audit the failed attempt (%s)",
                      type(exc).__name__)

    def _note(self, seal_id: str, *, ok: bool, reason: str | None = None,
              message: str | None = None) -> None:
        attempt: dict[str, Any] = {"ok": ok, "at": rfc3339(self._clock.now())}
        if not ok:
            attempt.update({"reason": reason, "message": message})
        with self._lock:
            self._attempts[seal_id] = attempt

    def attempts(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return dict(self._attempts)

    def note_attempts(self, attempts: dict[str, dict[str, Any]]) -> None:
        """Attempts made by a sibling worker (``--workers N``)."""
        with self._lock:
            self._attempts.update(attempts)


def auto_unseal(core: Core) -> bool:
    """Open ``core`` with the first automatic seal that works; False leaves it sealed."""
    if not core.initialized or not core.sealed:
        return False
    opened = core.seal_set.try_automatic()
    attempts = core.seal_set.attempts()
    if attempts:
        core.peers.announce({"op": "seal-attempts", "attempts": attempts})
    if opened is None:
        return False
    entry, root_key = opened
    try:
        core.seal_set.audit_opened(entry)
        core.open_with_root_key(root_key)
    except Exception as exc:  # no audit record or a key the keyring refuses: stay sealed
        log.error("auto-unseal: seal %s opened but the service could not (%s); staying sealed",
                  entry.id, type(exc).__name__)
        return False
    log.warning("auto-unseal: unsealed by seal %s (%s)", entry.id, entry.kind)
    return True


def unseal_with_passphrase(core: Core, ctx: RequestContext, passphrase: str
                           ) -> SealStatus:
    """``POST /v1/sys/unseal {"passphrase"}``: open this worker and every sibling."""
    core.initialized_seal_config()
    if not core.sealed:
        return core.seal_status()
    core.open_with_root_key(core.seal_set.open_passphrase(ctx, passphrase))
    return core.seal_status()


def unseal_automatic(core: Core, ctx: RequestContext) -> SealStatus:
    """``POST /v1/sys/unseal {"auto": true}``: try the automatic seals again now."""
    core.initialized_seal_config()
    if not core.sealed:
        return core.seal_status()
    core.seal_set.auto_limit.take(ctx.client)
    if not auto_unseal(core):
        raise Sealed("no automatic seal could open the service; see seal-status")
    return core.seal_status()


def start_auto_unseal(core: Core) -> threading.Thread | None:
    """Try the automatic seals in the background once the server starts.

    The server listens (sealed) meanwhile: an unreachable KMS costs seconds of
    timeouts, and health must answer during them. With ``--workers N`` one worker
    tries and every worker opens (the ``open`` event) and learns the outcome.
    """
    if not core.initialized or not core.sealed:
        return None
    thread = threading.Thread(target=auto_unseal, args=(core,), name="keyquorum-auto-unseal",
                              daemon=True)
    thread.start()
    return thread
