"""Approval requests of dual control, in the ``approvals`` table.

A guarded request that arrives without an approval is not run: it is *opened*
here as an approval request holding the complete request (its parameters, which
never hold key material: callers put a hash of any material there), a short
summary, and a salted SHA-256 of the exact parameters. Approvers see the request
whole (review F7: a summary cut at a few KiB let a root-equivalent rule be
approved unseen); one too long to read whole (``MAX_REQUEST_SHOWN``) is refused
rather than stored in part. Approvers *decide* it (approve or reject; one
decision per identity, never the requester's own). When enough approvals are
in, the requester re-sends the same request with the approval id, and it is
*consumed* once: a conditional ``UPDATE ... WHERE consumed_at IS NULL`` that
only one of any number of concurrent re-sends (in any process) can win.

State machine (``expired`` is computed from ``expires_at``, never stored)::

    pending ──M approve──▶ approved ──consume──▶ consumed
       │                      │   ▲ restore (the guarded work changed nothing)
       └──────reject──────────┴──▶ rejected      (one rejection vetoes)

Every refusal has its own error code (``errors.py``). No rule about *who* may
approve lives here (that is policy: the ``approve`` operation); this module
only enforces what makes approvals mean something: distinct identities, no
self-approval, exact parameters, once, in time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

from keyquorum.clock import Clock, rfc3339
from keyquorum.errors import (
    ApprovalConsumed,
    ApprovalExpired,
    ApprovalMismatch,
    ApprovalNotRequester,
    ApprovalRejected,
    ApprovalRequired,
    Conflict,
    DuplicateApproval,
    InvalidRequest,
    NotFound,
    SelfApproval,
)
from keyquorum.storage import approvals_repo
from keyquorum.storage.approvals_repo import ApprovalRow

PENDING = "pending"
APPROVED = "approved"
REJECTED = "rejected"
CONSUMED = "consumed"
EXPIRED = "expired"
STATES = (PENDING, APPROVED, REJECTED, CONSUMED, EXPIRED)
APPROVE = "approve"
REJECT = "reject"
MAX_NOTE = 1024
MAX_REQUEST_SHOWN = 64 * 1024
"""Bytes of canonical request an approval may hold: all of it is shown. (Summaries are
made by the server from the request; a policy's, with its diff, has its own bound.)"""
_ID_PREFIX = "apr_"
_HASH_DOMAIN = b"keyquorum/approval-request/v1\x00"
_DECIDE_RETRIES = 8


def new_approval_id() -> str:
    """``apr_`` + 128 random bits: unguessable, and 36 characters like the column."""
    return _ID_PREFIX + secrets.token_hex(16)


def canonical_request(action: str, key: str | None, params: Mapping[str, Any]) -> bytes:
    """One byte string per request: sorted keys, no whitespace, UTF-8, no NaN.

    Two requests are "the same" exactly when these bytes are equal (so ``1`` and
    ``1.0``, or a changed note, are different requests).
    """
    try:
        return json.dumps({"action": action, "key": key, "params": dict(params)},
                          sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InvalidRequest("the request parameters are not plain JSON") from exc


def request_hash(approval_id: str, action: str, key: str | None,
                 params: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical request, salted with the (random) approval id.

    The salt means a stored hash cannot be used to confirm a guess of the
    parameters of some other request (parameters may one day include material).
    """
    digest = hashlib.sha256(_HASH_DOMAIN + approval_id.encode("ascii") + b"\x00"
                            + canonical_request(action, key, params))
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Decision:
    identity: str
    decision: str  # APPROVE or REJECT
    at: float
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"identity": self.identity, "decision": self.decision, "at": rfc3339(self.at),
                "note": self.note}


@dataclass(frozen=True, slots=True)
class Approval:
    """One approval request as stored (``request_hash`` is never shown).

    ``request`` is the complete request approvers decide on (the parameters its hash
    is taken over); None only for requests stored before it was kept.
    """

    id: str
    operation: str
    key: str | None
    requester: str
    request_hash: str
    summary: dict[str, str]
    required: int
    state: str
    decisions: tuple[Decision, ...]
    created_at: float
    expires_at: float
    decided_at: float | None
    consumed_at: float | None
    decisions_text: str  # as stored: the compare-and-set token of ``decide``
    request: dict[str, Any] | None = None

    @property
    def approvals(self) -> int:
        return sum(1 for d in self.decisions if d.decision == APPROVE)

    def status(self, now: float) -> str:
        """The state, with ``expired`` for an open request past its time to live."""
        if self.state in (PENDING, APPROVED) and now >= self.expires_at:
            return EXPIRED
        return self.state

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id, "operation": self.operation, "key": self.key,
            "requester": self.requester, "summary": dict(self.summary),
            "request": self.request,
            "state": self.status(now), "approvals": self.approvals, "required": self.required,
            "decisions": [d.to_json() for d in self.decisions],
            "created_at": rfc3339(self.created_at), "expires_at": rfc3339(self.expires_at),
            "decided_at": rfc3339(self.decided_at), "consumed_at": rfc3339(self.consumed_at),
        }


def _decisions_from(text: str) -> tuple[Decision, ...]:
    return tuple(Decision(str(d["identity"]), str(d["decision"]), float(d["at"]),
                          d.get("note")) for d in json.loads(text or "[]"))


def _decisions_text(decisions: tuple[Decision, ...]) -> str:
    return json.dumps([{"identity": d.identity, "decision": d.decision, "at": d.at,
                        "note": d.note} for d in decisions], separators=(",", ":"))


_SHOWN_VERSION = 2


def _shown_text(summary: Mapping[str, str], request: Mapping[str, Any]) -> str:
    """What approvers are shown, as stored in the ``summary`` column (no migration):
    ``{"v": 2, "summary": {...}, "request": {...}}``. Rows from before hold the summary
    alone, a map of strings, which can never have an integer ``v``."""
    return json.dumps({"v": _SHOWN_VERSION, "summary": dict(summary),
                       "request": dict(request)}, sort_keys=True, ensure_ascii=False)


def _shown_from(text: str) -> tuple[dict[str, str], dict[str, Any] | None]:
    stored = json.loads(text or "{}")
    if stored.get("v") == _SHOWN_VERSION and set(stored) == {"v", "summary", "request"}:
        return dict(stored["summary"]), stored["request"]
    return stored, None


def _from_row(row: ApprovalRow) -> Approval:
    summary, request = _shown_from(row.summary)
    return Approval(
        id=row.id, operation=row.operation, key=row.key, requester=row.requester,
        request_hash=row.request_hash, summary=summary,
        required=row.required, state=row.state, decisions=_decisions_from(row.decisions),
        created_at=row.created_at, expires_at=row.expires_at, decided_at=row.decided_at,
        consumed_at=row.consumed_at, decisions_text=row.decisions, request=request,
    )


def check_shown_whole(action: str, key: str | None, params: Mapping[str, Any]) -> None:
    """``InvalidRequest`` if the request is too long for approvers to read whole: such a
    request is refused, never stored (or shown) in part."""
    shown = len(canonical_request(action, key, params))
    if shown > MAX_REQUEST_SHOWN:
        raise InvalidRequest(
            f"under dual control a request is at most {MAX_REQUEST_SHOWN // 1024} KiB, so "
            "its approvers can read all of it; this one is "
            f"{(shown + 1023) // 1024} KiB: split it into smaller changes")


def _refuse_closed(approval: Approval, now: float) -> None:
    """Raise the refusal for an approval that can no longer be decided or used."""
    if approval.state == CONSUMED:
        raise ApprovalConsumed(f"approval {approval.id} was already used")
    if approval.state == REJECTED:
        raise ApprovalRejected(f"approval {approval.id} was rejected")
    if now >= approval.expires_at:
        raise ApprovalExpired(f"approval {approval.id} expired at {rfc3339(approval.expires_at)}")


PAGE_TOKEN_PATTERN = r"[0-9]{1,12}\.[0-9]{1,9}~[0-9a-z_]{1,64}"  # noqa: S105 - a position
"""``<created_at>~<id>`` of the last approval on the page: every token of this shape is a
position to resume from (the OpenAPI document states the same pattern)."""
_PAGE_TOKEN = re.compile(PAGE_TOKEN_PATTERN)


def _page_token(approval: Approval) -> str:
    created = repr(approval.created_at)  # exact: the page resumes right after this one
    if "e" in created or "." not in created:
        created = f"{approval.created_at:.9f}"
    return f"{created}~{approval.id}"


def _after(token: str | None) -> tuple[float, str] | None:
    if not token:
        return None
    if not _PAGE_TOKEN.fullmatch(token):
        raise InvalidRequest("page_token is not one this server issued")
    created, _, approval_id = token.partition("~")
    return float(created), approval_id


class ApprovalStore:
    """Open, decide, consume and list approval requests; all state in the database."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    def open(self, *, action: str, key: str | None, requester: str,
             params: Mapping[str, Any], summary: Mapping[str, str], required: int,
             ttl: float) -> Approval:
        """Record a new pending request for ``required`` approvals, usable for ``ttl`` s:
        the complete request (``params``) and its summary, both shown to approvers."""
        approval_id = new_approval_id()
        now = self._clock.now()
        hashed = request_hash(approval_id, action, key, params)  # plain JSON, or refused
        check_shown_whole(action, key, params)
        row = ApprovalRow(
            id=approval_id, operation=action, key=key, requester=requester,
            request_hash=hashed, summary=_shown_text(summary, params), required=required,
            state=PENDING, decisions="[]", created_at=now, expires_at=now + ttl,
            decided_at=None, consumed_at=None,
        )
        with self._engine.begin() as conn:
            approvals_repo.insert_approval(conn, row)
        return self.get(approval_id)

    def find(self, approval_id: str) -> Approval | None:
        with self._engine.connect() as conn:
            row = approvals_repo.get_approval(conn, approval_id)
        return None if row is None else _from_row(row)

    def get(self, approval_id: str) -> Approval:
        approval = self.find(approval_id) if isinstance(approval_id, str) else None
        if approval is None:
            raise NotFound(f"no approval request {approval_id!r}")
        return approval

    def decide(self, approval_id: str, identity: str, decision: str,
               note: str | None = None, *,
               record: Callable[[Connection], None] | None = None) -> Approval:
        """Add ``identity``'s decision; refuse the requester, a second decision, a closed one.

        Decisions are a read-modify-write of one row, so the write is conditional
        on the row being unchanged since it was read (compare-and-set), retried a
        few times: two approvers deciding at once both count, neither is lost.
        """
        if decision not in (APPROVE, REJECT):
            raise InvalidRequest("a decision is approve or reject")
        if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE):
            raise InvalidRequest(f"note must be a string of at most {MAX_NOTE} characters")
        for _attempt in range(_DECIDE_RETRIES):
            current = self.get(approval_id)
            now = self._clock.now()
            if identity == current.requester:
                raise SelfApproval("the requester may not decide their own request")
            _refuse_closed(current, now)
            if any(d.identity == identity for d in current.decisions):
                raise DuplicateApproval(f"{identity} already decided approval {approval_id}")
            decisions = (*current.decisions, Decision(identity, decision, now, note))
            approvals = sum(1 for d in decisions if d.decision == APPROVE)
            if decision == REJECT:
                state = REJECTED  # one rejection vetoes, until the request has run
            else:
                state = APPROVED if approvals >= current.required else PENDING
            decided_at = current.decided_at
            if state != PENDING and current.state == PENDING:
                decided_at = now
            with self._engine.begin() as conn:
                changed = approvals_repo.set_decisions(
                    conn, approval_id, read_state=current.state,
                    read_decisions=current.decisions_text,
                    decisions=_decisions_text(decisions), state=state, decided_at=decided_at)
                if changed and record is not None:  # the decision and its audit record
                    record(conn)                    # commit together, or neither does
            if changed:
                return self.get(approval_id)
        raise Conflict("the approval request changed concurrently; retry")

    def consume(self, approval_id: str, *, requester: str, action: str, key: str | None,
                params: Mapping[str, Any], required: int) -> Approval:
        """Use an approval for exactly this request, once; raise the precise refusal if not.

        ``required`` is the number of approvals wanted now: if an operator raised
        it since the request was opened, the higher number applies.
        """
        approval = self.get(approval_id)
        if requester != approval.requester:
            raise ApprovalNotRequester("only the identity that made the request may use "
                                       "its approval")
        expected = request_hash(approval.id, action, key, params)
        same = hmac.compare_digest(approval.request_hash.encode(), expected.encode())
        if not same or approval.operation != action or approval.key != key:
            raise ApprovalMismatch(f"approval {approval.id} was given for a different request "
                                   "(operation, key or parameters differ)")
        now = self._clock.now()
        _refuse_closed(approval, now)
        wanted = max(approval.required, required)
        if approval.approvals < wanted:
            raise ApprovalRequired(
                f"approval {approval.id} has {approval.approvals} of {wanted} approvals",
                approval_id=approval.id, approvals=approval.approvals,
                approvals_required=wanted)
        with self._engine.begin() as conn:
            # The one atomic step: of concurrent re-sends (any process), one row update wins.
            won = approvals_repo.consume(conn, approval.id, now)
        if not won:
            _refuse_closed(self.get(approval.id), now)
            raise ApprovalConsumed(f"approval {approval.id} was already used")
        return self.get(approval.id)

    def restore(self, consumed: Approval) -> bool:
        """Undo ``consume`` when the guarded work provably changed nothing.

        Conditional on the consumption being this one (same ``consumed_at``), so
        it can never reopen an approval that another re-send used.
        """
        if consumed.consumed_at is None:
            return False
        with self._engine.begin() as conn:
            return approvals_repo.unconsume(conn, consumed.id, consumed.consumed_at)

    def list(self, *, state: str | None = None, limit: int = 100,
             page_token: str | None = None) -> tuple[list[Approval], str | None]:
        """Newest first. ``state`` one of STATES, ``"open"`` (pending or approved, not
        expired), or None for all. Answers ``(approvals, next_page_token)``."""
        now = self._clock.now()
        # (stored states, expired?) per state asked for; None: no condition on it.
        stored: tuple[str, ...] | None
        expired: bool | None
        if state == "open":
            stored, expired = (PENDING, APPROVED), False
        elif state == EXPIRED:
            stored, expired = (PENDING, APPROVED), True
        elif state in (PENDING, APPROVED):
            stored, expired = (state,), False
        elif state in (REJECTED, CONSUMED):
            stored, expired = (state,), None
        elif state is None:
            stored, expired = None, None
        else:
            raise InvalidRequest("state must be open, all, or one of " + ", ".join(STATES))
        after = _after(page_token)
        with self._engine.connect() as conn:
            found = [_from_row(row) for row in approvals_repo.list_approvals(
                conn, states=stored, expired=expired, now=now, after=after, limit=limit + 1)]
        more = len(found) > limit
        found = found[:limit]
        return found, _page_token(found[-1]) if more and found else None
