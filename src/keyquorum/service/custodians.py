"""Custodians and drills: who holds each share, proof that it still exists, the margin.

An organisation once reran an election because one of three trustees lost a
share and all three were needed; nobody knew until the day it was needed. So
every share has a named custodian, and possession is shown long before it is
needed, in two ways, each recorded with its time in the ``custodians`` table:

- ``proof``: the custodian answered a fresh challenge with a Schnorr proof of
  possession (``crypto.vss``), checked against the stored Feldman commitments,
  so the share itself never leaves the custodian's machine;
- ``unseal``: the share was submitted, and verified, at unseal.

Handing a share out (init, rekey) proves nothing about who received it: a share
counts only once its custodian has shown it at least once, their
**acknowledgement**, so a share lost on its first day shows up that day. The
quorum **margin** is how many acknowledged shares were shown within the drill
window (``drill_window_days``, default 90) beyond the threshold. At 0 one more
lost share locks the data; below 0 it may already be locked. Health, metrics,
status and the compliance report all carry the same warning and name the
custodians who have not acknowledged.

A share sealed to its custodian's key (``service.share_delivery``) waits in the
custodian's row as an envelope; ``delivered_share`` answers it to anyone (it is a
ciphertext only that custodian's private key opens), with the fingerprint of the
key the server sealed it to, so the custodian's CLI can check the key is theirs.

Challenges, proofs and key registrations need no token, like unseal: a custodian
may hold nothing but a share, and the proof is the credential. What an anonymous
caller can do is bounded: a challenge is public randomness with a short life, at
most ``MAX_OUTSTANDING`` are open per custodian, one client address may hold at
most ``CLIENT_CHALLENGES`` open (fewer, so it cannot fill a custodian's slots) and
all together ``TOTAL_CHALLENGES`` (``service.limits``), each answers one proof
(consumed by a conditional update in the database, so two workers or nodes cannot
both accept it), and every request, refused or not, is audited with its address.
Registering a key is a proof bound to that key (``seal.custodian_proof``): only
the holder of the custodian's current share can put a key in their name.
"""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Engine

from keyquorum.audit.in_transaction import write_audit_in
from keyquorum.audit.log import AuditLog
from keyquorum.clock import Clock, rfc3339
from keyquorum.crypto import vss
from keyquorum.crypto.random import random_bytes
from keyquorum.errors import (
    ChallengeExpired,
    ChallengeUsed,
    InvalidProof,
    NotFound,
    RateLimited,
)
from keyquorum.seal import custodian_key
from keyquorum.seal.custodian_proof import key_registration_context, proof_context
from keyquorum.seal.shamir import ShamirSealConfig
from keyquorum.seal.shares import decode_share
from keyquorum.service.context import RequestContext
from keyquorum.service.limits import OpenLimit
from keyquorum.service.refusal_facts import refusals_carry
from keyquorum.service.sys_values import (
    Custodian,
    CustodianQuorum,
    CustodianStatus,
    DeliveredShare,
)
from keyquorum.storage import custodians_repo as repo

log = logging.getLogger("keyquorum.custodians")

CHALLENGE_TTL = 300.0  # seconds: long enough to type a share, short enough to be fresh
MAX_OUTSTANDING = 5  # open challenges per custodian
CLIENT_CHALLENGES = 4  # open challenges one client address may hold (< MAX_OUTSTANDING)
TOTAL_CHALLENGES = 64  # and all addresses together
CHALLENGE_BYTES = 32
_DAY = 86400.0


def margin_warning(margin: int, verified: int, shares: int, threshold: int,
                   window_days: int, unacknowledged: tuple[str, ...] = ()) -> str | None:
    """The warning people read in health, metrics' help, status and reports (None if safe)."""
    seen = (f"{verified} of {shares} shares were verified in the last {window_days} days "
            f"and {threshold} are needed")
    if unacknowledged:
        seen += (f"; never acknowledged by their custodian: {', '.join(unacknowledged)} "
                 "(a share counts only once its custodian has proved it)")
    if margin > 0:
        return None
    if margin == 0:
        return (f"quorum margin is 0: {seen}; one more lost share locks the data. Have every "
                "custodian prove their share (keyquorum custodian prove), or rekey")
    return (f"quorum margin is {margin}: {seen}; if the unverified shares are lost the data is "
            "already locked. Find and prove the shares now, and rekey while a quorum exists")


class CustodianRegistry:
    """The custodians of the current seal generation, their drills and the quorum margin."""

    def __init__(self, engine: Engine, clock: Clock, audit: AuditLog,
                 drill_window_days: int) -> None:
        self.engine = engine
        self.clock = clock
        self.audit = audit
        self.window_days = drill_window_days
        # Anyone may ask for a challenge: one address may hold at most 4 open ones
        # (fewer than MAX_OUTSTANDING: one address never holds every slot of a
        # custodian), and all addresses together 64.
        self.open_challenges = OpenLimit(clock.now, per_client=CLIENT_CHALLENGES,
                                         total=TOTAL_CHALLENGES, what="custodian challenges")

    # -- reading ---------------------------------------------------------------------

    def rows(self, config: ShamirSealConfig) -> list[repo.CustodianRow]:
        return repo.ensure_custodians(self.engine, config.generation, config.names)

    def quorum(self, config: ShamirSealConfig,
               rows: list[repo.CustodianRow] | None = None, *,
               public: bool = False) -> CustodianQuorum:
        """The threshold, the drill window, the verified shares and the margin beyond it.

        Only acknowledged shares count: one handed out but never shown by its
        custodian may already be lost. ``public`` (health, which needs no token) gives
        how many custodians have not acknowledged, not who: their names are for token
        holders (``status``, reports).
        """
        rows = self.rows(config) if rows is None else rows
        since = self.clock.now() - self.window_days * _DAY
        verified = sum(1 for r in rows if r.acknowledged_at is not None
                       and r.last_verified_at is not None and r.last_verified_at >= since)
        unacknowledged = tuple(r.name for r in rows if r.acknowledged_at is None)
        margin = verified - config.threshold
        named = (f"{len(unacknowledged)} custodian(s)",) if public and unacknowledged \
            else unacknowledged
        warning = margin_warning(margin, verified, config.shares, config.threshold,
                                 self.window_days, named)
        return CustodianQuorum(threshold=config.threshold, drill_window_days=self.window_days,
                               verified=verified, margin=margin,
                               unacknowledged=unacknowledged, public=public,
                               warning=warning or None)

    def status(self, config: ShamirSealConfig) -> CustodianStatus:
        """What ``GET /v1/sys/custodians`` answers (commitments included, to save offline)."""
        rows = self.rows(config)
        with self.engine.connect() as conn:
            keys = repo.get_keys(conn, config.names)
        return CustodianStatus(quorum=self.quorum(config, rows), shares=config.shares,
                               generation=config.generation,
                               commitments=tuple(c.hex() for c in config.commitments),
                               custodians=tuple(_describe(r, keys.get(r.name)) for r in rows))

    def delivered_share(self, config: ShamirSealConfig, name: str) -> DeliveredShare:
        """A custodian's sealed share and what their CLI checks it against (no token).

        Public: the envelope opens only with the custodian's private key, and the
        fingerprints are of public keys. ``recipient`` is the key the server sealed
        the share to; ``key_fingerprint`` the key registered in the name now.
        """
        index = _index_of(config, name)
        rows = {r.index: r for r in self.rows(config)}
        with self.engine.connect() as conn:
            envelope = repo.get_envelope(conn, config.generation, index)
            key = repo.get_keys(conn, (name,)).get(name)
        row = rows[index]
        if envelope is None:
            raise NotFound("no sealed share waits for this custodian (the share was handed "
                           "out in the clear, or before deliveries were recorded)")
        return DeliveredShare(custodian=name, index=index, generation=config.generation,
                              delivery=row.delivery, recipient=row.recipient,
                              envelope=envelope,
                              key_fingerprint=key.fingerprint if key else None,
                              acknowledged_at=row.acknowledged_at,
                              commitments=tuple(c.hex() for c in config.commitments))

    # -- recording ---------------------------------------------------------------------

    @staticmethod
    def record_issued(conn: Connection, config: ShamirSealConfig, now: float,
                      deliveries: Mapping[int, repo.Delivery] | None = None) -> None:
        """Inside init's or rekey's transaction: the new rows, none acknowledged yet, with
        each sealed share's envelope."""
        repo.insert_custodians(conn, config.generation, config.names, now, deliveries)

    def share_verified(self, config: ShamirSealConfig, share: object) -> None:
        """A share (text, or already parsed) was verified at unseal (here or by the
        supervisor): its custodian has it, and has acknowledged it.

        Best effort: a failure to record must never stand in the way of unsealing.
        """
        try:
            index = share.index if isinstance(share, vss.Share) else decode_share(share).index
            repo.ensure_custodians(self.engine, config.generation, config.names)
            with self.engine.begin() as conn:
                repo.mark_verified(conn, config.generation, index, self.clock.now(), "unseal")
        except Exception as exc:
            log.error("could not record a verified unseal share (%s)", type(exc).__name__)

    # -- drills: challenge and proof ------------------------------------------------------

    def challenge(self, config: ShamirSealConfig, name: str,
                  ctx: RequestContext) -> dict[str, Any]:
        """A fresh challenge for ``name``; a refusal carries the custodian's index."""
        with refusals_carry({}) as facts:
            index = _index_of(config, name)
            facts.update(index=str(index), generation=str(config.generation))
            now = self.clock.now()
            row = repo.ChallengeRow(id=str(uuid.uuid4()), custodian_index=index,
                                    generation=config.generation,
                                    challenge=random_bytes(CHALLENGE_BYTES),
                                    expires_at=now + CHALLENGE_TTL)
            # Open challenges per address and in all, before the per-custodian cap (F14).
            self.open_challenges.take(ctx.client, row.id, row.expires_at)
            with self.engine.begin() as conn:
                repo.purge_challenges(conn, now - CHALLENGE_TTL)
                if repo.outstanding_challenges(conn, index, config.generation,
                                               now) >= MAX_OUTSTANDING:
                    self.open_challenges.release(row.id)
                    raise RateLimited(f"{MAX_OUTSTANDING} challenges are already open for "
                                      f"this custodian; answer one or wait "
                                      f"{int(CHALLENGE_TTL)} seconds")
                repo.insert_challenge(conn, row, now)
            with self.engine.connect() as conn:
                key = repo.get_keys(conn, (name,)).get(name)
        return {"challenge_id": row.id, "challenge": base64.b64encode(row.challenge).decode(),
                "custodian": name, "index": index, "generation": config.generation,
                "commitments": [c.hex() for c in config.commitments],
                "key_fingerprint": key.fingerprint if key else None,
                "expires_at": rfc3339(row.expires_at)}

    def _spend(self, config: ShamirSealConfig, name: str, challenge_id: str, proof: bytes,
               facts: dict[str, str]) -> tuple[int, bytes, float]:
        """Consume the challenge (committed, whatever the proof turns out to be):
        ``(index, challenge bytes, now)``. A failed or replayed proof can never be
        retried against it.

        The challenge is spent in the database *before* anything about the proof is
        checked, and only then stops counting against the address that asked for it:
        a refusal that left it open (a proof of the wrong size, another custodian's
        name) would let one address hold every slot of a custodian."""
        index = _index_of(config, name)
        facts.update(index=str(index), generation=str(config.generation))
        now = self.clock.now()
        with self.engine.begin() as conn:
            row = repo.get_challenge(conn, challenge_id)
            if row is None:
                raise NotFound("no such challenge (ask for a fresh one)")
            fresh = row.used_at is None and repo.consume_challenge(conn, challenge_id, now)
        self.open_challenges.release(challenge_id)  # spent now, whoever answered it
        if not fresh:
            raise ChallengeUsed("the challenge already answered a proof; ask for a fresh one")
        if row.custodian_index != index or row.generation != config.generation:
            raise InvalidProof("the challenge was not issued to this custodian for the "
                               "current seal generation")
        if row.expires_at <= now:
            raise ChallengeExpired("the challenge expired; ask for a fresh one")
        if len(proof) != vss.PROOF_SIZE:
            raise InvalidProof(f"a proof is {vss.PROOF_SIZE} bytes")
        return index, row.challenge, now

    def prove(self, config: ShamirSealConfig, name: str, challenge_id: str, proof: bytes,
              ctx: RequestContext) -> dict[str, Any]:
        """Check one proof against its challenge; consumed once whatever the outcome.

        ``challenge_id`` and ``proof`` come from a parsed body
        (``api.bodies_sys.ProveCustodian``); a proof of the wrong size is an invalid proof.
        The first valid proof is the custodian's acknowledgement of their share.
        """
        with refusals_carry({}) as facts:
            index, challenge, now = self._spend(config, name, challenge_id, proof, facts)
            context = proof_context(challenge, name, index, config.generation)
            if not vss.verify_possession(index, proof, list(config.commitments), context):
                raise InvalidProof("the proof does not show possession of this custodian's "
                                   "share for this challenge")
        acknowledged = self._record_possession(config, index, now, ctx, "sys:custodian-proof",
                                               facts)
        return {"valid": True, "verified_at": rfc3339(now), "custodian": name, "index": index,
                "acknowledged_at": rfc3339(acknowledged)}

    def register_key(self, config: ShamirSealConfig, name: str, challenge_id: str,
                     proof: bytes, public_pem: str, ctx: RequestContext) -> dict[str, Any]:
        """Register (or replace) ``name``'s public key: the proof must show the
        custodian's current share AND name this key's fingerprint, so nobody without
        the share (an operator with any token included) can put a key in their name,
        and a proof relayed by someone else cannot be reused for another key."""
        with refusals_carry({}) as facts:
            print_ = custodian_key.fingerprint(public_pem)  # checked by the request body
            facts["fingerprint"] = print_
            index, challenge, now = self._spend(config, name, challenge_id, proof, facts)
            context = key_registration_context(challenge, name, index, config.generation,
                                               print_)
            if not vss.verify_possession(index, proof, list(config.commitments), context):
                raise InvalidProof("the proof does not show possession of this custodian's "
                                   "share for this challenge and key")
        row = repo.CustodianKeyRow(name, custodian_key.ALGORITHM, public_pem, print_, now,
                                   "proof")
        with self.engine.connect() as conn:
            previous = repo.get_keys(conn, (name,)).get(name)
        facts["previous"] = previous.fingerprint if previous else "none"
        self._record_possession(config, index, now, ctx, "sys:custodian-key", facts, row)
        return {"custodian": name, "index": index, "fingerprint": print_,
                "registered_at": rfc3339(now),
                "replaced": previous.fingerprint if previous else None}

    def _record_possession(self, config: ShamirSealConfig, index: int, now: float,
                           ctx: RequestContext, operation: str, facts: dict[str, str],
                           key: repo.CustodianKeyRow | None = None) -> float:
        """The proof's effects and record, in one transaction; the acknowledgement time."""
        repo.ensure_custodians(self.engine, config.generation, config.names)
        with self.engine.begin() as conn:
            repo.mark_verified(conn, config.generation, index, now, "proof")
            if key is not None:
                repo.put_key(conn, key)
            write_audit_in(self.audit, conn, ctx, operation=operation, key=None,
                           key_version=None, now=now, detail=facts)
            row = next(r for r in repo.list_custodians(conn, config.generation)
                       if r.index == index)
        return row.acknowledged_at if row.acknowledged_at is not None else now


def _index_of(config: ShamirSealConfig, name: str) -> int:
    try:
        return config.names.index(name) + 1
    except ValueError:
        raise NotFound("no custodian of that name") from None


def _describe(row: repo.CustodianRow, key: repo.CustodianKeyRow | None) -> Custodian:
    return Custodian(index=row.index, name=row.name, issued_at=row.issued_at,
                     last_verified_at=row.last_verified_at, verified_by=row.verified_by,
                     acknowledged_at=row.acknowledged_at, delivery=row.delivery,
                     recipient=row.recipient,
                     key_fingerprint=key.fingerprint if key else None)
