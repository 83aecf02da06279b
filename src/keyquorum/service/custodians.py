"""Custodians and drills: who holds each share, proof that it still exists, the margin.

An organisation once reran an election because one of three trustees lost a
share and all three were needed; nobody knew until the day it was needed. So
every share has a named custodian, and possession is shown long before it is
needed, in three ways, each recorded with its time in the ``custodians`` table:

- ``issued``: the share was handed out at init or rekey;
- ``proof``: the custodian answered a fresh challenge with a Schnorr proof of
  possession (``crypto.vss``), checked against the stored Feldman commitments,
  so the share itself never leaves the custodian's machine;
- ``unseal``: the share was submitted, and verified, at unseal.

The quorum **margin** is how many shares were shown within the drill window
(``drill_window_days``, default 90) beyond the threshold. At 0 one more lost
share locks the data; below 0 it may already be locked. Health, metrics and the
compliance report all carry the same warning.

Challenges and proofs need no token, like unseal: a custodian may hold nothing
but a share, and the proof is the credential. What an anonymous caller can do
is bounded: a challenge is public randomness with a short life, at most
``MAX_OUTSTANDING`` are open per custodian, one client address may hold at most
``CLIENT_CHALLENGES`` open (fewer, so it cannot fill a custodian's slots) and all
together ``TOTAL_CHALLENGES`` (``service.limits``), each answers one proof (consumed by
a conditional update in the database, so two workers or nodes cannot both
accept it), and every request, refused or not, is audited with its address.
"""

from __future__ import annotations

import base64
import logging
import uuid
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
from keyquorum.seal.custodian_proof import proof_context
from keyquorum.seal.shamir import ShamirSealConfig
from keyquorum.seal.shares import decode_share
from keyquorum.service.context import RequestContext
from keyquorum.service.limits import OpenLimit
from keyquorum.storage import custodians_repo as repo

log = logging.getLogger("keyquorum.custodians")

CHALLENGE_TTL = 300.0  # seconds: long enough to type a share, short enough to be fresh
MAX_OUTSTANDING = 5  # open challenges per custodian
CLIENT_CHALLENGES = 4  # open challenges one client address may hold (< MAX_OUTSTANDING)
TOTAL_CHALLENGES = 64  # and all addresses together
CHALLENGE_BYTES = 32
_DAY = 86400.0


def margin_warning(margin: int, verified: int, shares: int, threshold: int,
                   window_days: int) -> str | None:
    """The warning people read in health, metrics' help, status and reports (None if safe)."""
    seen = (f"{verified} of {shares} shares were verified in the last {window_days} days "
            f"and {threshold} are needed")
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
               rows: list[repo.CustodianRow] | None = None) -> dict[str, Any]:
        """``{threshold, drill_window_days, verified, margin, warning?}``."""
        rows = self.rows(config) if rows is None else rows
        since = self.clock.now() - self.window_days * _DAY
        verified = sum(1 for r in rows if r.last_verified_at is not None
                       and r.last_verified_at >= since)
        margin = verified - config.threshold
        answer: dict[str, Any] = {"threshold": config.threshold,
                                  "drill_window_days": self.window_days,
                                  "verified": verified, "margin": margin}
        warning = margin_warning(margin, verified, config.shares, config.threshold,
                                 self.window_days)
        if warning:
            answer["warning"] = warning
        return answer

    def status(self, config: ShamirSealConfig) -> dict[str, Any]:
        """What ``GET /v1/sys/custodians`` answers (commitments included, to save offline)."""
        rows = self.rows(config)
        return {**self.quorum(config, rows), "shares": config.shares,
                "generation": config.generation,
                "commitments": [c.hex() for c in config.commitments],
                "custodians": [_describe(r) for r in rows]}

    # -- recording ---------------------------------------------------------------------

    @staticmethod
    def record_issued(conn: Connection, config: ShamirSealConfig, now: float) -> None:
        """Inside init's or rekey's transaction: handing out a share counts as verified."""
        repo.insert_custodians(conn, config.generation, config.names, now)

    def share_verified(self, config: ShamirSealConfig, share: object) -> None:
        """A share was verified at unseal (here or by the supervisor): its custodian has it.

        Best effort: a failure to record must never stand in the way of unsealing.
        """
        try:
            index = decode_share(share).index
            repo.ensure_custodians(self.engine, config.generation, config.names)
            with self.engine.begin() as conn:
                repo.mark_verified(conn, config.generation, index, self.clock.now(), "unseal")
        except Exception as exc:
            log.error("could not record a verified unseal share (%s)", type(exc).__name__)

    # -- drills: challenge and proof ------------------------------------------------------

    def _index(self, config: ShamirSealConfig, name: str, ctx: RequestContext) -> int:
        ctx.detail["custodian"] = name[:64]
        try:
            index = config.names.index(name) + 1
        except ValueError:
            raise NotFound("no custodian of that name") from None
        ctx.detail["index"] = str(index)
        ctx.detail["generation"] = str(config.generation)
        return index

    def challenge(self, config: ShamirSealConfig, name: str,
                  ctx: RequestContext) -> dict[str, Any]:
        index = self._index(config, name, ctx)
        now = self.clock.now()
        row = repo.ChallengeRow(id=str(uuid.uuid4()), custodian_index=index,
                                generation=config.generation,
                                challenge=random_bytes(CHALLENGE_BYTES),
                                expires_at=now + CHALLENGE_TTL)
        # Open challenges per address and in all, before the per-custodian cap (review F14).
        self.open_challenges.take(ctx.client, row.id, row.expires_at)
        with self.engine.begin() as conn:
            repo.purge_challenges(conn, now - CHALLENGE_TTL)
            if repo.outstanding_challenges(conn, index, config.generation, now) >= MAX_OUTSTANDING:
                self.open_challenges.release(row.id)
                raise RateLimited(f"{MAX_OUTSTANDING} challenges are already open for this "
                                  f"custodian; answer one or wait {int(CHALLENGE_TTL)} seconds")
            repo.insert_challenge(conn, row, now)
        ctx.detail["challenge_id"] = row.id
        return {"challenge_id": row.id, "challenge": base64.b64encode(row.challenge).decode(),
                "custodian": name, "index": index, "generation": config.generation,
                "commitments": [c.hex() for c in config.commitments],
                "expires_at": rfc3339(row.expires_at)}

    def prove(self, config: ShamirSealConfig, name: str, challenge_id: str, proof: bytes,
              ctx: RequestContext) -> dict[str, Any]:
        """Check one proof against its challenge; consumed once whatever the outcome.

        ``challenge_id`` and ``proof`` come from a parsed body
        (``api.bodies_sys.ProveCustodian``); a proof of the wrong size is an invalid proof.
        """
        index = self._index(config, name, ctx)
        ctx.detail["challenge_id"] = challenge_id
        self.open_challenges.release(challenge_id)  # answered (or refused): spent either way
        if len(proof) != vss.PROOF_SIZE:
            raise InvalidProof(f"a proof is {vss.PROOF_SIZE} bytes")
        now = self.clock.now()
        with self.engine.begin() as conn:
            row = repo.get_challenge(conn, challenge_id)
            if row is None:
                raise NotFound("no such challenge (ask for a fresh one)")
            if row.custodian_index != index or row.generation != config.generation:
                raise InvalidProof("the challenge was not issued to this custodian for the "
                                   "current seal generation")
            if row.used_at is not None or not repo.consume_challenge(conn, challenge_id, now):
                raise ChallengeUsed("the challenge already answered a proof; ask for a fresh one")
            if row.expires_at <= now:
                raise ChallengeExpired("the challenge expired; ask for a fresh one")
        # The challenge is spent (committed) before the proof is checked: a failed or
        # replayed proof can never be retried against it.
        context = proof_context(row.challenge, name, index, config.generation)
        if not vss.verify_possession(index, proof, list(config.commitments), context):
            raise InvalidProof("the proof does not show possession of this custodian's share "
                               "for this challenge")
        repo.ensure_custodians(self.engine, config.generation, config.names)
        with self.engine.begin() as conn:
            repo.mark_verified(conn, config.generation, index, now, "proof")
            write_audit_in(self.audit, conn, ctx, operation="sys:custodian-proof", key=None,
                           key_version=None, now=now)
        return {"valid": True, "verified_at": rfc3339(now), "custodian": name, "index": index}


def _describe(row: repo.CustodianRow) -> dict[str, Any]:
    return {"index": row.index, "name": row.name,
            "issued_at": rfc3339(row.issued_at),
            "last_verified_at": rfc3339(row.last_verified_at),
            "verified_by": row.verified_by}

