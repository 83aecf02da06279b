"""Adding a seal is a custodian ceremony: a quorum of Shamir shares, not only a token.

A new seal is a new way to the root key. Whoever chooses a passphrase seal and
then downloads a backup holds every key offline (review F3), so a token holding
``sys:seal`` (and dual control's approvals, when it guards ``seal-change``) can
only *propose* one: ``POST /v1/sys/seals`` wraps the root key under the new seal
at once (the HSM or KMS is contacted, the passphrase goes through Argon2id and is
forgotten), and keeps the result as a pending ceremony, sealed by the barrier:
nobody with the database file alone can try a passphrase against it, and backups
carry it only inside their encrypted body. The seal joins the seal set only when
custodians submit a quorum of current shares with the ceremony's nonce (no token,
like unseal and rekey: the share is the credential); at quorum the shares must
rebuild the root key in use (constant-time comparison), and the seal entry, its
audit record and the removal of the ceremony land in one transaction.

The ceremony is the stored entry ``ceremony/seal-add`` (public description in the
clear, the wrapped entry and submitted shares under the barrier, the shares bound
to a digest of the rest: ``service.ceremony_shares``), so any worker
or node takes the next share; every step locks that entry first. It expires after
``SEAL_ADD_TTL`` and is dropped when done or cancelled. Removing a seal is not a
ceremony (it takes no way to the root key away from Shamir).
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sqlalchemy import Connection

from keyquorum.audit.in_transaction import write_audit_in
from keyquorum.crypto import vss
from keyquorum.crypto.wipe import wipe
from keyquorum.errors import Conflict, InvalidRequest, NotFound, Sealed
from keyquorum.seal import kinds
from keyquorum.seal.entry import SealEntry
from keyquorum.seal.seal_set import SEAL_SET_PREFIX, SHAMIR_ENTRY
from keyquorum.seal.shamir import ShamirSealConfig, open_root, verified_share
from keyquorum.service.ceremony_shares import facts_digest, open_shares, seal_shares
from keyquorum.service.ceremony_values import SealAddStatus
from keyquorum.service.context import RequestContext
from keyquorum.service.core import Core
from keyquorum.service.refusal_facts import refusals_carry
from keyquorum.storage.system_repo import (
    delete_entry,
    get_entry,
    insert_entry,
    lock_entry,
    update_entry,
)

SEAL_ADD_ENTRY = "ceremony/seal-add"  # not under seal/: it is no way back to the root key
SEAL_ADD_TTL = 3600.0
_ENTRY_PATH = SEAL_ADD_ENTRY + "/entry"  # barrier AAD of the pending seal entry
_SHARES_PATH = SEAL_ADD_ENTRY + "/shares"  # barrier AAD of the submitted shares


@dataclass(frozen=True)
class SealAddState:
    """The stored ceremony: what is proposed in the clear, everything else under the barrier."""

    nonce: str
    generation: int  # of the Shamir seal whose shares are being collected
    seal: dict[str, Any]  # the proposed seal's public description (type, id, params)
    started_at: float
    expires_at: float
    started_by: str | None
    sealed_entry: str = field(repr=False)  # base64 barrier blob of the SealEntry
    indexes: tuple[int, ...] = ()
    sealed_shares: str | None = field(default=None, repr=False)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    def facts(self) -> str:
        """The digest of what this ceremony keeps outside the shares blob, the seal's
        description and its wrapped entry included (``ceremony_shares``): a wrapped
        entry moved here from another proposal makes the next share refused."""
        public = asdict(self)
        del public["indexes"], public["sealed_shares"]
        return facts_digest(public)

    @classmethod
    def from_json(cls, raw: bytes) -> SealAddState:
        data = json.loads(raw)
        return cls(**{**data, "indexes": tuple(data["indexes"])})


class SealAddCeremony:
    """Propose, advance, inspect and cancel the one pending seal addition of a service."""

    def __init__(self, core: Core) -> None:
        self.core = core

    # -- storage ---------------------------------------------------------------------------

    def _locked(self, conn: Connection) -> SealAddState | None:
        lock_entry(conn, SEAL_ADD_ENTRY)  # steps from different workers run one by one
        raw = get_entry(conn, SEAL_ADD_ENTRY)
        return SealAddState.from_json(raw) if raw is not None else None

    def _config(self, conn: Connection) -> ShamirSealConfig:
        raw = get_entry(conn, SHAMIR_ENTRY)
        if raw is None:
            raise Sealed("the service is not initialized")
        return ShamirSealConfig.from_json(raw)

    def _seal(self, path: str, plain: bytes) -> str:
        return base64.b64encode(self.core.barrier().encrypt(path, plain)).decode()

    def _open(self, path: str, blob: str) -> bytes:
        return self.core.barrier().decrypt(path, base64.b64decode(blob))

    def _shares(self, state: SealAddState) -> dict[int, vss.Share]:
        return open_shares(self.core.barrier(), _SHARES_PATH, state.sealed_shares,
                           state.facts(), state.indexes,
                           "the stored seal ceremony is inconsistent (what it proposes or "
                           "its shares were changed in storage); cancel it")

    def _seal_shares(self, state: SealAddState, shares: dict[int, vss.Share]) -> str:
        return seal_shares(self.core.barrier(), _SHARES_PATH, state.facts(), shares)

    def _purge_expired(self, now: float) -> None:
        with self.core.engine.begin() as conn:
            state = self._locked(conn)
            if state is not None and state.expires_at <= now:
                delete_entry(conn, SEAL_ADD_ENTRY)

    # -- the steps ---------------------------------------------------------------------------

    def status(self) -> SealAddStatus:
        now = self.core.clock.now()
        self._purge_expired(now)
        with self.core.engine.connect() as conn:
            raw = get_entry(conn, SEAL_ADD_ENTRY)
            config = self._config(conn)
        if raw is None:
            return SealAddStatus(stage="idle", progress=0, required=config.threshold,
                                 generation=config.generation)
        return _describe(SealAddState.from_json(raw), config.threshold)

    def start(self, ctx: RequestContext, request: kinds.SealRequest, *,
              facts: Mapping[str, str] | None = None) -> SealAddStatus:
        """Wrap the root key under the proposed seal now; store it pending a quorum.

        The caller has passed dual control's ``seal-change`` gate around this call;
        ``facts`` (the approval it used) go on the record.
        """
        core = self.core
        root_key = core.root_key()  # Sealed while sealed: nothing to wrap
        with core.engine.connect() as conn:
            if get_entry(conn, SEAL_SET_PREFIX + request.id) is not None:
                raise Conflict(f"a seal with id {request.id!r} exists; give another id")
        now = core.clock.now()
        entry = kinds.create(request, root_key, now, core.seal_set.trust)
        with core.engine.begin() as conn:
            current = self._locked(conn)
            if current is not None and current.expires_at > now:
                raise Conflict("a seal addition is already waiting for custodians; finish "
                               "or cancel it first")
            if current is not None:
                delete_entry(conn, SEAL_ADD_ENTRY)
            config = self._config(conn)
            state = SealAddState(
                nonce=secrets.token_hex(16), generation=config.generation,
                seal=entry.describe(), started_at=now, expires_at=now + SEAL_ADD_TTL,
                started_by=ctx.accessor, sealed_entry=self._seal(_ENTRY_PATH, entry.to_json()))
            # Sealed from the start (no share yet): what is proposed is bound before anyone
            # submits.
            state = replace(state, sealed_shares=self._seal_shares(state, {}))
            insert_entry(conn, SEAL_ADD_ENTRY, state.to_json(), now)
            write_audit_in(core.audit, conn, ctx, operation="sys:seal-add", key=None,
                           key_version=None, now=now,
                           detail={**(facts or {}), "seal": entry.id,
                                   "seal_type": entry.kind, "nonce": state.nonce,
                                   "stage": "proposed"})
        return _describe(state, config.threshold)

    def submit(self, ctx: RequestContext, nonce: str, share: str) -> SealAddStatus:
        core = self.core
        now = core.clock.now()
        self._purge_expired(now)
        with refusals_carry({}) as facts, core.engine.begin() as conn:
            state = self._locked(conn)
            if state is None:
                raise NotFound("no seal addition is waiting for custodians (or it expired)")
            if not hmac.compare_digest(nonce.encode(), state.nonce.encode()):
                raise InvalidRequest("nonce does not match the seal addition in progress")
            facts.update({"nonce": state.nonce, "seal": str(state.seal.get("id"))})
            config = self._config(conn)
            if config.generation != state.generation:
                raise Conflict("the shares changed (rekey) since this seal was proposed; "
                               "cancel it and propose it again")
            checked = verified_share(config, share)  # alone: a wrong share changes nothing
            facts["index"] = str(checked.index)
            shares = self._shares(state)
            if checked.index in shares:
                raise InvalidRequest(f"share {checked.index} was already submitted")
            shares[checked.index] = checked
            facts["progress"] = f"{len(shares)}/{config.threshold}"
            if len(shares) < config.threshold:
                state = replace(state, indexes=tuple(sorted(shares)),
                                sealed_shares=self._seal_shares(state, shares))
                update_entry(conn, SEAL_ADD_ENTRY, state.to_json(), now)
                write_audit_in(core.audit, conn, ctx, operation="sys:seal-add-update",
                               key=None, key_version=None, now=now, detail=facts)
                return _describe(state, config.threshold)
            entry = self._finish(conn, ctx, state, config, shares, now, facts)
        core.seal_config_changed()  # reload here and tell the sibling workers
        return SealAddStatus(stage="complete", progress=len(shares),
                             required=config.threshold, seal=entry.describe())

    def _finish(self, conn: Connection, ctx: RequestContext, state: SealAddState,
                config: ShamirSealConfig, shares: dict[int, vss.Share], now: float,
                facts: dict[str, str]) -> SealEntry:
        """Quorum: the shares must open the root key in use; then the seal is added."""
        root_key = open_root(config, list(shares.values()))
        try:
            if not hmac.compare_digest(root_key, self.core.root_key()):
                raise Conflict("the shares open a different root key than the one in use")
        finally:
            wipe(root_key)  # only compared: the proposed seal was wrapped at the proposal
        entry = SealEntry.from_json(self._open(_ENTRY_PATH, state.sealed_entry))
        if entry.describe() != state.seal:  # what the custodians were shown is what is added
            raise Conflict("the stored seal ceremony is inconsistent; cancel it")
        try:
            insert_entry(conn, SEAL_SET_PREFIX + entry.id, entry.to_json(), now)
        except Exception as exc:  # the id was taken meanwhile (IntegrityError)
            raise Conflict(f"a seal with id {entry.id!r} exists") from exc
        delete_entry(conn, SEAL_ADD_ENTRY)
        facts.update({"completed": "true", "seal_type": entry.kind})
        write_audit_in(self.core.audit, conn, ctx, operation="sys:seal-add-update", key=None,
                       key_version=None, now=now, detail=facts)
        return entry

    def cancel(self, ctx: RequestContext) -> SealAddStatus:
        core = self.core
        now = core.clock.now()
        with core.engine.begin() as conn:
            state = self._locked(conn)
            if state is None:
                raise NotFound("no seal addition is in progress")
            config = self._config(conn)
            delete_entry(conn, SEAL_ADD_ENTRY)  # the pending wrap and the shares go with it
            write_audit_in(core.audit, conn, ctx, operation="sys:seal-add-cancel", key=None,
                           key_version=None, now=now,
                           detail={"nonce": state.nonce, "seal": str(state.seal.get("id"))})
        return SealAddStatus(stage="cancelled", progress=0, required=config.threshold,
                             generation=config.generation)


def _describe(state: SealAddState, required: int) -> SealAddStatus:
    return SealAddStatus(stage="collecting", nonce=state.nonce, progress=len(state.indexes),
                         required=required, submitted=state.indexes, seal=state.seal,
                         generation=state.generation, started_by=state.started_by,
                         started_at=state.started_at, expires_at=state.expires_at)
