"""Rekey: a quorum of current shares replaces every share, with no downtime.

Three plans, each started by an operator holding ``sys:seal`` and, when dual
control covers ``seal-change``, approved by others first:

- ``change`` (``{shares, threshold, custodians?, force?}``): change n and k (and the names);
- ``replace`` (``{replace: {custodian: OLD, with: NEW}}``): a new custodian instead of
  one whose share was lost or who left;
- ``reissue`` (``{reissue: true}``): the same custodians get fresh shares.

The body is parsed by ``api.bodies_sys.StartRekey`` into a ``RekeyRequest``;
``plan_for`` resolves it against the seal in use.

Shares of one secret keep reconstructing it, so a lost (or leaked) share can
only be made useless by splitting a *new* secret: every plan, replacing a single
custodian included, reissues every share, and all old shares stop working at
once. And a rekey rotates the root key (``service.root_rotation``): the barrier
keyring is re-sealed under a fresh one, so retired shares together with an old
backup's header open nothing made after the rekey (review F11). The keyring's
terms do not change, so the barrier, the keys and the service stay up throughout.

**No share is ever answered in the clear.** The plan pins a public key for every
custodian of the new share set (``service.share_delivery``: registered by the
custodian, or given in the request for a newcomer) and the rekey is refused
(``custodian_key_required``) while any is missing. Each new share is sealed to
its custodian's key; the completing answer carries only these envelopes, and
each custodian fetches their own from ``GET /v1/sys/custodians/{name}/share``.

Custodians then submit their current shares one at a time with the ceremony's
nonce (no token, like unseal: the share is the credential); each is verified
alone against the stored commitments, so a wrong share is refused by itself and
the progress is kept. The ceremony lives in storage as the entry
``ceremony/rekey`` (public plan in the clear, submitted shares encrypted under
the barrier and bound to a digest of the plan from the start: a database writer
who rewrites the keys or counts makes the next share refused), so any worker or
node can take the next share; every step locks that entry first, so two
submissions never race. It expires after ``REKEY_TTL`` and is deleted when done
or cancelled.

At quorum, in ONE transaction: the old secret is reconstructed and proven by
unwrapping the stored root key (it must equal the root key in memory), a fresh
root key is made and the keyring and automatic seals re-wrapped under it, a
fresh secret is split and the new root key wrapped under it, and the new Shamir
configuration (generation + 1), its custodian rows with the sealed shares, the
keys the request gave, and the audit record are stored while the ceremony entry
is deleted. A crash before the commit changes nothing; after it, the new shares
open the store. Then this worker and every sibling adopt the new root key.
"""

from __future__ import annotations

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
from keyquorum.seal.seal_set import SHAMIR_ENTRY
from keyquorum.seal.shamir import (
    ShamirSealConfig,
    create_shamir_seal,
    default_custodian_names,
    open_root,
    validate_custodians,
    verified_share,
)
from keyquorum.service import share_delivery
from keyquorum.service.ceremony_shares import facts_digest, open_shares, seal_shares
from keyquorum.service.ceremony_values import RekeyStatus
from keyquorum.service.context import RequestContext
from keyquorum.service.core import Core
from keyquorum.service.refusal_facts import refusals_carry
from keyquorum.service.root_rotation import refuse_passphrase_seals, rotate_root
from keyquorum.storage import custodians_repo
from keyquorum.storage.system_repo import (
    delete_entry,
    get_entry,
    insert_entry,
    lock_entry,
    swap_entry,
    update_entry,
)

REKEY_ENTRY = "ceremony/rekey"  # not under seal/: it is no way back to the root key
REKEY_TTL = 3600.0
_SHARES_PATH = REKEY_ENTRY + "/shares"  # barrier AAD of the submitted shares


@dataclass(frozen=True)
class RekeyPlan:
    """What the new share set will be, and the key each new share is sealed to (public:
    counts, names, fingerprints and public keys only)."""

    kind: str  # change | replace | reissue
    shares: int
    threshold: int
    custodians: tuple[str, ...]
    replaced: str | None = None
    replacement: str | None = None
    # (custodian, fingerprint, registered | given), one per new share, in share order
    recipients: tuple[tuple[str, str, str], ...] = ()
    # the public keys the request gave (custodian, PEM): registered at the quorum
    given_keys: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    keys_replaced: tuple[str, ...] = ()  # "name: old -> new" for given keys over registered

    @property
    def names(self) -> tuple[str, ...]:
        return self.custodians or default_custodian_names(self.shares)

    def summary(self) -> dict[str, str]:
        """What approvers see and the audit records (never a share)."""
        out = {"kind": self.kind, "shares": str(self.shares), "threshold": str(self.threshold)}
        if self.custodians:
            out["custodians"] = ", ".join(self.custodians)[:512]
        if self.replaced is not None:
            out["replace"] = f"{self.replaced} -> {self.replacement}"
        if self.recipients:
            out["recipients"] = ", ".join(f"{name}={print_}" for name, print_, _ in
                                          self.recipients)[:1024]
        if self.keys_replaced:
            out["keys_replaced"] = "; ".join(self.keys_replaced)[:1024]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RekeyPlan:
        return cls(**{**data, "custodians": tuple(data["custodians"]),
                      "recipients": tuple(tuple(r) for r in data.get("recipients", ())),
                      "given_keys": tuple(tuple(k) for k in data.get("given_keys", ())),
                      "keys_replaced": tuple(data.get("keys_replaced", ()))})


@dataclass(frozen=True)
class RekeyState:
    """The stored ceremony: the plan in the clear, submitted shares sealed by the barrier."""

    nonce: str
    generation: int  # of the seal whose shares are being collected
    plan: RekeyPlan
    started_at: float
    expires_at: float
    started_by: str | None
    indexes: tuple[int, ...] = ()
    sealed_shares: str | None = field(default=None, repr=False)  # base64 barrier blob

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    def facts(self) -> str:
        """The digest of what this ceremony keeps in the clear, the plan with the keys the
        new shares will be sealed to above all (``ceremony_shares``): a writer who
        rewrites it makes the next share refused, rather than sealed to their keys."""
        public = asdict(self)
        del public["indexes"], public["sealed_shares"]
        return facts_digest(public)

    @classmethod
    def from_json(cls, raw: bytes) -> RekeyState:
        data = json.loads(raw)
        plan = RekeyPlan.from_dict(data.pop("plan"))
        return cls(plan=plan, **{**data, "indexes": tuple(data["indexes"])})


@dataclass(frozen=True)
class RekeyRequest:
    """What an operator asked for, its fields already checked (``api.bodies_sys.StartRekey``:
    counts, names and the k = n margin): ``change`` n and k (``custodians`` None keeps
    the names when n stays), ``replace`` one custodian, or ``reissue`` the same shares.
    ``custodian_keys`` gives public keys for custodians of the new share set by name."""

    kind: str  # change | replace | reissue
    shares: int = 0
    threshold: int = 0
    custodians: tuple[str, ...] | None = None
    replaced: str | None = None
    replacement: str | None = None
    custodian_keys: Mapping[str, str] | None = field(default=None, repr=False)


def plan_for(config: ShamirSealConfig, request: RekeyRequest) -> RekeyPlan:
    """The new share set ``request`` asks for, resolved against the current seal."""
    if request.kind == "replace":
        old, new = request.replaced, request.replacement
        names = list(config.names)
        if old not in names:
            raise NotFound("no custodian of that name")
        if new in names:
            raise InvalidRequest("the new custodian already holds a share; use reissue")
        names[names.index(old)] = str(new)
        validate_custodians(names, config.shares)  # the newcomer's name is path-safe
        return RekeyPlan("replace", config.shares, config.threshold, tuple(names), old, new)
    if request.kind == "reissue":
        return RekeyPlan("reissue", config.shares, config.threshold, config.custodians)
    if request.custodians is None:  # keep the names if the count stays; otherwise share-1..n
        names = list(config.custodians) if request.shares == config.shares else []
    else:
        names = list(request.custodians)
    return RekeyPlan("change", request.shares, request.threshold, tuple(names))


def with_recipients(plan: RekeyPlan,
                    recipients: Mapping[str, share_delivery.Recipient]) -> RekeyPlan:
    """``plan`` with the key each new share will be sealed to pinned in it."""
    return replace(
        plan,
        recipients=tuple((r.name, r.fingerprint, r.source) for r in recipients.values()),
        given_keys=tuple((r.name, r.public_pem) for r in recipients.values()
                         if r.source == "given"),
        keys_replaced=tuple(f"{r.name}: {r.replaces} -> {r.fingerprint}"
                            for r in recipients.values() if r.replaces))


class RekeyCeremony:
    """Start, advance, inspect and cancel the one rekey ceremony of a service."""

    def __init__(self, core: Core) -> None:
        self.core = core

    # -- storage --------------------------------------------------------------------------

    def _locked(self, conn: Connection) -> RekeyState | None:
        """The stored ceremony, with its entry locked for this transaction.

        Touching the row first takes the write lock (SQLite) or the row lock
        (PostgreSQL) before reading, so steps from different workers run one by one.
        """
        lock_entry(conn, REKEY_ENTRY)
        raw = get_entry(conn, REKEY_ENTRY)
        return RekeyState.from_json(raw) if raw is not None else None

    @staticmethod
    def _drop(conn: Connection) -> None:
        delete_entry(conn, REKEY_ENTRY)

    def _config(self, conn: Connection) -> tuple[ShamirSealConfig, bytes]:
        raw = get_entry(conn, SHAMIR_ENTRY)
        if raw is None:
            raise Sealed("the service is not initialized")
        return ShamirSealConfig.from_json(raw), raw

    def _shares(self, state: RekeyState) -> dict[int, vss.Share]:
        return open_shares(self.core.barrier(), _SHARES_PATH, state.sealed_shares,
                           state.facts(), state.indexes,
                           "the stored rekey ceremony is inconsistent (its plan or shares "
                           "were changed in storage); cancel it")

    def _seal_shares(self, state: RekeyState, shares: dict[int, vss.Share]) -> str:
        return seal_shares(self.core.barrier(), _SHARES_PATH, state.facts(), shares)

    def _purge_expired(self, now: float) -> None:
        """Delete an expired ceremony (and the shares it holds) before anything else."""
        with self.core.engine.begin() as conn:
            state = self._locked(conn)
            if state is not None and state.expires_at <= now:
                self._drop(conn)

    # -- the steps --------------------------------------------------------------------------

    def status(self) -> RekeyStatus:
        self._purge_expired(self.core.clock.now())
        with self.core.engine.connect() as conn:
            raw = get_entry(conn, REKEY_ENTRY)
            config, _ = self._config(conn)
        state = RekeyState.from_json(raw) if raw is not None else None
        if state is None or state.expires_at <= self.core.clock.now():
            return RekeyStatus(stage="idle", progress=0, required=config.threshold,
                               generation=config.generation)
        return _describe(state, config.threshold)

    def plan(self, request: RekeyRequest) -> RekeyPlan:
        """The plan ``request`` asks for, against the seal in use, with the key each new
        share will be sealed to (to show approvers); ``custodian_key_required`` while a
        custodian of the new share set has none, ``conflict`` while a passphrase seal
        would stop the root key's rotation."""
        plan = plan_for(self.core.initialized_seal_config(), request)
        with self.core.engine.connect() as conn:
            refuse_passphrase_seals(conn)
            recipients = share_delivery.resolve(conn, plan.names, request.custodian_keys)
        return with_recipients(plan, recipients)

    def start(self, ctx: RequestContext, plan: RekeyPlan, *,
              facts: Mapping[str, str] | None = None) -> RekeyStatus:
        """Open the ceremony for ``plan`` (from ``plan``). The caller has passed dual
        control's ``seal-change`` gate (``DualControl.guard``) around this call; the
        facts it yields (the approval used) are ``facts``, for the record."""
        core = self.core
        now = core.clock.now()
        with core.engine.begin() as conn:
            current = self._locked(conn)
            if current is not None and current.expires_at > now:
                raise Conflict("a rekey is already in progress; finish or cancel it first")
            if current is not None:
                self._drop(conn)
            config, _ = self._config(conn)
            state = RekeyState(nonce=secrets.token_hex(16), generation=config.generation,
                               plan=plan, started_at=now, expires_at=now + REKEY_TTL,
                               started_by=ctx.accessor)
            # Sealed from the start (no share yet): the plan is bound before anyone submits.
            state = replace(state, sealed_shares=self._seal_shares(state, {}))
            insert_entry(conn, REKEY_ENTRY, state.to_json(), now)
            write_audit_in(core.audit, conn, ctx, operation="sys:rekey-init", key=None,
                           key_version=None, now=now,
                           detail={**(facts or {}), **plan.summary(), "nonce": state.nonce})
        return _describe(state, config.threshold)

    def submit(self, ctx: RequestContext, nonce: str, share: str) -> RekeyStatus:
        core = self.core
        now = core.clock.now()
        self._purge_expired(now)
        with refusals_carry({}) as facts, core.engine.begin() as conn:
            state = self._locked(conn)
            if state is None:
                raise NotFound("no rekey is in progress (or it expired)")
            if not hmac.compare_digest(nonce.encode(), state.nonce.encode()):
                raise InvalidRequest("nonce does not match the rekey in progress")
            facts["nonce"] = state.nonce
            config, raw_config = self._config(conn)
            if config.generation != state.generation:
                raise Conflict("the seal changed since this rekey started; cancel it")
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
                update_entry(conn, REKEY_ENTRY, state.to_json(), now)
                write_audit_in(core.audit, conn, ctx, operation="sys:rekey-update", key=None,
                               key_version=None, now=now, detail=facts)
                return _describe(state, config.threshold)
            done = self._finish(conn, ctx, state, config, raw_config, shares, now, facts)
        # Committed: this worker and its siblings open the keyring with the new root key
        # (each keeps a copy of its own); this one is overwritten.
        try:
            core.adopt_root_key(done.root_key)
        finally:
            wipe(done.root_key)
        return done.answer(len(shares), config.threshold)

    def _finish(self, conn: Connection, ctx: RequestContext, state: RekeyState,
                config: ShamirSealConfig, raw_config: bytes, shares: dict[int, vss.Share],
                now: float, facts: dict[str, str]) -> _Finished:
        """Quorum reached: prove the old secret, rotate the root key, split a new secret,
        seal each new share to its custodian, store it all at once."""
        plan = state.plan
        old_root = open_root(config, list(shares.values()))
        try:
            if not hmac.compare_digest(old_root, self.core.root_key()):
                raise Conflict("the shares open a different root key than the one in use")
            recipients = self._recipients(conn, plan)
            rotated = rotate_root(conn, old_root, now, self.core.seal_set.trust)
        finally:
            wipe(old_root)  # the barrier in use keeps its own copy until the new one is adopted
        try:
            new_config, texts = create_shamir_seal(rotated.root_key, plan.shares,
                                                   plan.threshold, list(plan.custodians),
                                                   config.generation + 1)
            deliveries = share_delivery.seal_all(new_config, texts, recipients)
            del texts  # the only plain copies: sealed to their custodians, never stored
            if not swap_entry(conn, SHAMIR_ENTRY, raw_config, new_config.to_json(), now):
                raise Conflict("the seal changed during the rekey; nothing was changed")
            self._drop(conn)
            self.core.custodian_registry.record_issued(conn, new_config, now, deliveries)
            share_delivery.register_given(conn, recipients, now, "rekey")
            facts.update({"completed": "true", "generation": str(new_config.generation),
                          "root_key_rotated": "true",
                          "seals_rewrapped": ", ".join(rotated.seals) or "none"})
            write_audit_in(self.core.audit, conn, ctx, operation="sys:rekey-update", key=None,
                           key_version=None, now=now, detail=facts)
        except BaseException:
            wipe(rotated.root_key)  # nothing is stored: the new key is no key to anything
            raise
        return _Finished(new_config, share_delivery.describe(new_config, deliveries),
                         rotated.root_key, self.core.seal_fingerprint(new_config))

    @staticmethod
    def _recipients(conn: Connection, plan: RekeyPlan
                    ) -> dict[str, share_delivery.Recipient]:
        """The keys the plan pinned: a given key as given, a registered one only if it is
        still the one registered (what submitters saw in the status is what is used)."""
        given = dict(plan.given_keys)
        registered = custodians_repo.get_keys(conn, plan.names)
        recipients = {}
        for name, print_, source in plan.recipients:
            if source == "given":
                recipients[name] = share_delivery.Recipient(name, given[name], print_, source)
                continue
            row = registered.get(name)
            if row is None or not hmac.compare_digest(row.fingerprint, print_):
                raise Conflict(f"the key registered for {name} changed since this rekey "
                               "started; cancel it and start again")
            recipients[name] = share_delivery.Recipient(name, row.public_key, print_, source)
        if tuple(recipients) != plan.names:  # a ceremony stored before keys were pinned
            raise Conflict("this rekey was started without custodian keys; cancel it and "
                           "start again")
        return recipients

    def cancel(self, ctx: RequestContext) -> RekeyStatus:
        core = self.core
        now = core.clock.now()
        with core.engine.begin() as conn:
            state = self._locked(conn)
            if state is None:
                raise NotFound("no rekey is in progress")
            config, _ = self._config(conn)
            self._drop(conn)  # the submitted shares go with it
            write_audit_in(core.audit, conn, ctx, operation="sys:rekey-cancel", key=None,
                           key_version=None, now=now, detail={"nonce": state.nonce})
        return RekeyStatus(stage="cancelled", progress=0, required=config.threshold,
                           generation=config.generation)


@dataclass(frozen=True)
class _Finished:
    """A completed rekey: the new seal, the sealed shares, the new root key (to adopt)."""

    config: ShamirSealConfig
    encrypted_shares: list[dict[str, object]]
    root_key: bytearray = field(repr=False)
    seal_fingerprint: str | None = None

    def answer(self, progress: int, required: int) -> RekeyStatus:
        """The completing submission's answer: ciphertexts and public facts only."""
        return RekeyStatus(stage="complete", progress=progress, required=required,
                           generation=self.config.generation, new_config=self.config,
                           encrypted_shares=tuple(self.encrypted_shares),
                           seal_fingerprint=self.seal_fingerprint)


def _describe(state: RekeyState, required: int) -> RekeyStatus:
    return RekeyStatus(stage="collecting", nonce=state.nonce, progress=len(state.indexes),
                       required=required, submitted=state.indexes, plan=state.plan,
                       generation=state.generation, started_by=state.started_by,
                       started_at=state.started_at, expires_at=state.expires_at)
