"""Break glass: a custodian quorum mints a new root token (Vault's ``generate-root``).

Whatever happens to the tokens (every privileged one lost, revoked, or held by
someone who left; dual control set so that nobody can approve), the custodians
can always make a new root token: a quorum of Shamir shares is the service's
last word, so it must also be a way back in. No token is needed, and dual
control does not apply: the quorum *is* the control, and a stronger one than M
approvals.

Shape (Vault's, made safe against anonymous callers):

1. ``init``: the requester's public key (``crypto.kem_box``: X-Wing, a key of
   ``keyquorum custodian keygen`` or one the CLI makes for this attempt) and the
   FIRST share. Unlike Vault, opening an attempt needs a valid share, exactly as
   an unseal round starts with one: nobody without a share can open an attempt,
   hold the one slot, or make the others wait (Vault's unauthenticated
   generate-root let anyone start or cancel attempts: HCSEC-2026-08, and OpenBao
   now turns the endpoints off by default). The answer carries the attempt's
   ``nonce``, to this submitter only.
2. ``update``: each further custodian submits a share with the nonce. Every
   share is verified alone against the commitments, so a wrong one is refused by
   itself and the progress is kept.
3. At quorum, in ONE transaction (``UnitOfWork.audited``): the shares must rebuild
   the root key in use (constant-time comparison), a token with the ``root``
   policy is stored, the attempt is deleted and the audit record is appended;
   if the record cannot be written nothing is minted (fail closed). The token is
   answered only sealed to the requester's public key (``auth.break_glass``), to
   whichever custodian completed the quorum; the server keeps no copy.
4. ``cancel`` needs the nonce (the submitters have it; status never shows it).

The attempt is the stored entry ``ceremony/generate-root``: public facts in the
clear, the nonce only as its SHA-256, submitted shares under the barrier and bound
to a digest of those facts (``service.ceremony_shares``), so a database writer who
swaps the requester's public key mid-ceremony makes the next share refused. Every
step locks that entry first, so any worker or node takes the next step and two
submissions never race. It expires after ``GENERATE_ROOT_TTL`` (an opener who
walks away holds the slot for at most that long; the status names the share
that opened it). Wrong shares, nonces and keys are bounded per client address
and in all (``WindowLimit``: a caller over it is refused before anything is
checked); the bound is per process.

Audit records name the attempt by a public id, the share index, the progress,
the key's fingerprint and, at the end, the new token's accessor: never a share,
the nonce or the token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

from sqlalchemy import Connection

from keyquorum.auth.break_glass import seal_root_token
from keyquorum.auth.identity import ROOT_POLICY_NAME
from keyquorum.crypto import kem_box, vss
from keyquorum.crypto.wipe import wipe
from keyquorum.errors import Conflict, Forbidden, InvalidRequest, NotFound, Sealed
from keyquorum.seal.seal_set import SHAMIR_ENTRY
from keyquorum.seal.shamir import ShamirSealConfig, open_root, verified_share
from keyquorum.service.ceremony_shares import facts_digest, open_shares, seal_shares
from keyquorum.service.ceremony_values import GenerateRootStatus
from keyquorum.service.changes import Change
from keyquorum.service.context import RequestContext
from keyquorum.service.core import Core
from keyquorum.service.limits import WindowLimit
from keyquorum.storage.system_repo import (
    delete_entry,
    get_entry,
    insert_entry,
    lock_entry,
    update_entry,
)

GENERATE_ROOT_ENTRY = "ceremony/generate-root"  # not under seal/: no way to the root key
GENERATE_ROOT_TTL = 3600.0
_SHARES_PATH = GENERATE_ROOT_ENTRY + "/shares"  # barrier AAD of the submitted shares
TOKEN_NAME = "root (generate-root)"  # noqa: S105 - a name, not a secret
CREATED_BY = "generate-root"
OP_INIT = "sys:generate-root-init"
OP_UPDATE = "sys:generate-root-update"
OP_CANCEL = "sys:generate-root-cancel"
# Refusals that count against a caller: wrong shares, nonces, keys; a slot already taken.
_COUNTED = (InvalidRequest, Forbidden, NotFound, Conflict)


def _nonce_hash(nonce: str) -> str:
    return hashlib.sha256(b"keyquorum generate-root nonce\x00" + nonce.encode()).hexdigest()


@dataclass(frozen=True)
class Attempt:
    """The stored attempt: public facts, the nonce's hash, shares sealed by the barrier."""

    attempt: str  # public id: audit records and status name the attempt by it
    nonce_hash: str = field(repr=False)
    generation: int  # of the Shamir seal whose shares are collected
    public_key: str  # the requester's PEM: the new token is sealed to it
    fingerprint: str
    token_ttl: float | None  # of the token to mint; None: no expiry (like init's)
    opened_by: int  # the share index that opened it
    started_at: float
    expires_at: float
    indexes: tuple[int, ...] = ()
    sealed_shares: str | None = field(default=None, repr=False)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Attempt:
        data = json.loads(raw)
        return cls(**{**data, "indexes": tuple(data["indexes"])})

    def facts(self) -> str:
        """The digest of what this attempt keeps in the clear (``ceremony_shares``): the
        collected shares are bound to it, so a writer who swaps the public key (or
        anything else) between two submissions makes the next one refuse."""
        public = asdict(self)
        del public["indexes"], public["sealed_shares"]
        return facts_digest(public)

    def holds_nonce(self, nonce: object) -> bool:
        """Whether ``nonce`` is this attempt's (constant time over the hashes)."""
        if not isinstance(nonce, str) or not nonce:
            return False
        return hmac.compare_digest(_nonce_hash(nonce).encode(), self.nonce_hash.encode())


class GenerateRoot:
    """Open, advance, inspect and cancel the one root-token generation of a service."""

    def __init__(self, core: Core) -> None:
        self.core = core
        # Failures per address and in all: shares are 256-bit and nonces 128-bit, so
        # nothing can be guessed; this bounds the work (and records) a flood makes.
        self.failures = WindowLimit(core.clock.now, per_client=10, total=120, window=60.0,
                                    what="refused root token generation requests")

    # -- storage --------------------------------------------------------------------------

    @staticmethod
    def _locked(conn: Connection) -> Attempt | None:
        lock_entry(conn, GENERATE_ROOT_ENTRY)  # steps from different workers run one by one
        raw = get_entry(conn, GENERATE_ROOT_ENTRY)
        return Attempt.from_json(raw) if raw is not None else None

    @staticmethod
    def _config(conn: Connection) -> ShamirSealConfig:
        raw = get_entry(conn, SHAMIR_ENTRY)
        if raw is None:
            raise Sealed("the service is not initialized")
        return ShamirSealConfig.from_json(raw)

    def _shares(self, state: Attempt) -> dict[int, vss.Share]:
        return open_shares(self.core.barrier(), _SHARES_PATH, state.sealed_shares,
                           state.facts(), state.indexes,
                           "the stored root token generation is inconsistent (its stored "
                           "facts or shares were changed); cancel it")

    def _seal_shares(self, state: Attempt, shares: dict[int, vss.Share]) -> str:
        return seal_shares(self.core.barrier(), _SHARES_PATH, state.facts(), shares)

    def _purge_expired(self, now: float) -> None:
        """Delete an expired attempt (and the shares it holds) before anything else."""
        with self.core.engine.begin() as conn:
            state = self._locked(conn)
            if state is not None and state.expires_at <= now:
                delete_entry(conn, GENERATE_ROOT_ENTRY)

    # -- the steps --------------------------------------------------------------------------

    def status(self) -> GenerateRootStatus:
        """Public progress: never the nonce, a share or the token."""
        now = self.core.clock.now()
        self._purge_expired(now)
        with self.core.engine.connect() as conn:
            raw = get_entry(conn, GENERATE_ROOT_ENTRY)
            config = self._config(conn)
        if raw is None:
            return GenerateRootStatus(stage="idle", progress=0, required=config.threshold)
        return _describe(Attempt.from_json(raw), config)

    def start(self, ctx: RequestContext, public_key: str, share: str,
              token_ttl: float | None) -> GenerateRootStatus:
        """Open an attempt with the requester's public key and the first share."""
        return self._bounded(ctx, lambda: self._start(ctx, public_key, share, token_ttl))

    def submit(self, ctx: RequestContext, nonce: str, share: str) -> GenerateRootStatus:
        """Add one custodian's share; at quorum, mint the token (sealed to the requester)."""
        return self._bounded(ctx, lambda: self._submit(ctx, nonce, share))

    def cancel(self, ctx: RequestContext, nonce: str) -> GenerateRootStatus:
        """Drop the attempt and its shares; only with its nonce."""
        return self._bounded(ctx, lambda: self._cancel(ctx, nonce))

    def _bounded(self, ctx: RequestContext, step: Callable[[], GenerateRootStatus]
                 ) -> GenerateRootStatus:
        """Refuse a caller over its failure bound before anything is checked; count the
        refusals of this step that a caller caused."""
        self.failures.check(ctx.client)
        try:
            return step()
        except _COUNTED:
            self.failures.note(ctx.client)
            raise

    def _start(self, ctx: RequestContext, public_key: str, share: str,
               token_ttl: float | None) -> GenerateRootStatus:
        core = self.core
        core.root_key()  # Sealed while sealed: unseal first (the custodians can)
        try:
            fingerprint = kem_box.public_fingerprint(public_key)
        except ValueError as exc:
            raise InvalidRequest(f"public_key: {exc}") from None
        now = core.clock.now()
        self._purge_expired(now)
        with core.changes.audited(ctx, OP_INIT) as change:
            if self._locked(change.conn) is not None:
                raise Conflict("a root token generation is already in progress; finish it, "
                               "cancel it with its nonce, or wait until it expires")
            config = self._config(change.conn)
            checked = verified_share(config, share)  # no share, no attempt
            nonce = secrets.token_hex(16)
            state = Attempt(attempt="gr_" + secrets.token_hex(8), nonce_hash=_nonce_hash(nonce),
                            generation=config.generation, public_key=public_key.strip() + "\n",
                            fingerprint=fingerprint, token_ttl=token_ttl,
                            opened_by=checked.index, started_at=now,
                            expires_at=now + GENERATE_ROOT_TTL)
            change.detail.update({"attempt": state.attempt, "public_key": fingerprint,
                                  **({"token_ttl": str(int(token_ttl))} if token_ttl else {})})
            answer = self._add(change, state, config, {checked.index: checked},
                               checked.index, now, new=True)
        return replace(answer, nonce=nonce)

    def _submit(self, ctx: RequestContext, nonce: str, share: str) -> GenerateRootStatus:
        core = self.core
        core.root_key()
        now = core.clock.now()
        self._purge_expired(now)
        with core.changes.audited(ctx, OP_UPDATE) as change:
            state = self._locked(change.conn)
            if state is None:
                raise NotFound("no root token generation is in progress (or it expired)")
            if not state.holds_nonce(nonce):
                raise InvalidRequest("nonce does not match the root token generation in "
                                     "progress")
            config = self._config(change.conn)
            if config.generation != state.generation:
                raise Conflict("the shares changed (rekey) since this attempt opened; cancel it")
            checked = verified_share(config, share)  # alone: a wrong share changes nothing
            shares = self._shares(state)
            if checked.index in shares:
                raise InvalidRequest(f"share {checked.index} was already submitted")
            shares[checked.index] = checked
            change.detail.update({"attempt": state.attempt, "public_key": state.fingerprint})
            answer = self._add(change, state, config, shares, checked.index, now, new=False)
        return replace(answer, nonce=nonce)

    def _add(self, change: Change, state: Attempt, config: ShamirSealConfig,
             shares: dict[int, vss.Share], index: int, now: float, *,
             new: bool) -> GenerateRootStatus:
        """Store the progress, or mint the token once the quorum is in."""
        change.detail.update({"index": str(index),
                              "progress": f"{len(shares)}/{config.threshold}"})
        if len(shares) >= config.threshold:
            return self._mint(change, state, config, shares)
        state = replace(state, indexes=tuple(sorted(shares)),
                        sealed_shares=self._seal_shares(state, shares))
        if new:
            insert_entry(change.conn, GENERATE_ROOT_ENTRY, state.to_json(), now)
        else:
            update_entry(change.conn, GENERATE_ROOT_ENTRY, state.to_json(), now)
        return _describe(state, config)

    def _mint(self, change: Change, state: Attempt, config: ShamirSealConfig,
              shares: dict[int, vss.Share]) -> GenerateRootStatus:
        """Quorum: prove the root key, store a root token, drop the attempt; one transaction."""
        root_key = open_root(config, list(shares.values()))  # a buffer, wiped at once
        try:
            same = hmac.compare_digest(root_key, self.core.root_key())
        finally:
            wipe(root_key)
        if not same:
            raise Conflict("the shares open a different root key than the one in use")
        token, identity = self.core.tokens.create(
            policies=[ROOT_POLICY_NAME], ttl=state.token_ttl, name=TOKEN_NAME,
            created_by=CREATED_BY, connection=change.conn)
        delete_entry(change.conn, GENERATE_ROOT_ENTRY)
        change.detail.update({"completed": "true", "accessor": identity.accessor})
        return GenerateRootStatus(
            stage="complete", attempt=state.attempt, progress=len(shares),
            required=config.threshold, public_key_fingerprint=state.fingerprint,
            accessor=identity.accessor, token_expires_at=identity.expires_at,
            encoded_token=seal_root_token(state.public_key, token, state.attempt))

    def _cancel(self, ctx: RequestContext, nonce: str) -> GenerateRootStatus:
        core = self.core
        with core.changes.audited(ctx, OP_CANCEL) as change:
            state = self._locked(change.conn)
            if state is None:
                raise NotFound("no root token generation is in progress")
            if not state.holds_nonce(nonce):
                raise Forbidden("cancelling a root token generation needs the nonce its "
                                "submitters were given")
            config = self._config(change.conn)
            delete_entry(change.conn, GENERATE_ROOT_ENTRY)  # the submitted shares go with it
            change.detail.update({"attempt": state.attempt, "progress":
                                  f"{len(state.indexes)}/{config.threshold}"})
        return GenerateRootStatus(stage="cancelled", attempt=state.attempt, progress=0,
                                  required=config.threshold)


def _describe(state: Attempt, config: ShamirSealConfig) -> GenerateRootStatus:
    names = config.names
    opener = names[state.opened_by - 1] if 0 < state.opened_by <= len(names) else None
    return GenerateRootStatus(
        stage="collecting", attempt=state.attempt, progress=len(state.indexes),
        required=config.threshold, submitted=state.indexes, opened_by=opener,
        public_key_fingerprint=state.fingerprint, token_ttl=state.token_ttl,
        started_at=state.started_at, expires_at=state.expires_at)


__all__ = ["GENERATE_ROOT_ENTRY", "GENERATE_ROOT_TTL", "Attempt", "GenerateRoot"]
