"""Approval rows of dual control: reads and conditional writes, no rules.

Which decisions count, who may decide and when a request is approved are
``auth/approvals.py``'s business. Here every change is a conditional ``UPDATE``
whose row count says whether it won: a decision only if the row is unchanged
since it was read (compare-and-set), a consumption only once, a restore only of
that consumption. The summary and the decisions are JSON text, stored and
returned as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, or_, select, update

from keyquorum.storage.schema import approvals

# Stored state names the conditional writes test (the state machine is auth/approvals.py).
_APPROVED = "approved"
_CONSUMED = "consumed"


@dataclass(frozen=True, slots=True)
class ApprovalRow:
    id: str
    operation: str
    key: str | None
    requester: str
    request_hash: str
    summary: str  # JSON text
    required: int
    state: str
    decisions: str  # JSON text: the compare-and-set token of ``set_decisions``
    created_at: float
    expires_at: float
    decided_at: float | None
    consumed_at: float | None


def _from_row(row: Any) -> ApprovalRow:
    return ApprovalRow(
        id=row.id, operation=row.operation, key=row.key, requester=row.requester,
        request_hash=row.request_hash, summary=row.summary, required=row.required,
        state=row.state, decisions=row.decisions, created_at=row.created_at,
        expires_at=row.expires_at, decided_at=row.decided_at, consumed_at=row.consumed_at)


def insert_approval(conn: Connection, row: ApprovalRow) -> None:
    conn.execute(approvals.insert().values(
        id=row.id, operation=row.operation, key=row.key, requester=row.requester,
        request_hash=row.request_hash, summary=row.summary, required=row.required,
        state=row.state, decisions=row.decisions, created_at=row.created_at,
        expires_at=row.expires_at, decided_at=row.decided_at, consumed_at=row.consumed_at))


def get_approval(conn: Connection, approval_id: str) -> ApprovalRow | None:
    row = conn.execute(select(approvals).where(approvals.c.id == approval_id)).first()
    return None if row is None else _from_row(row)


def set_decisions(conn: Connection, approval_id: str, *, read_state: str, read_decisions: str,
                  decisions: str, state: str, decided_at: float | None) -> bool:
    """Write new decisions if the row still has the state and decisions it was read
    with and is not consumed (compare-and-set); False if it changed meanwhile."""
    c = approvals.c
    return bool(conn.execute(update(approvals).where(
        c.id == approval_id, c.state == read_state, c.decisions == read_decisions,
        c.consumed_at.is_(None),
    ).values(decisions=decisions, state=state, decided_at=decided_at)).rowcount)


def consume(conn: Connection, approval_id: str, now: float) -> bool:
    """Mark an approved, unexpired, unused approval consumed; False if that did not hold.

    The one atomic step: of concurrent consumers (any process), one row update wins.
    """
    c = approvals.c
    return bool(conn.execute(update(approvals).where(
        c.id == approval_id, c.state == _APPROVED, c.consumed_at.is_(None), c.expires_at > now,
    ).values(state=_CONSUMED, consumed_at=now)).rowcount)


def unconsume(conn: Connection, approval_id: str, consumed_at: float) -> bool:
    """Reopen the consumption made at ``consumed_at`` (never another one); False if gone."""
    c = approvals.c
    return bool(conn.execute(update(approvals).where(
        c.id == approval_id, c.state == _CONSUMED, c.consumed_at == consumed_at,
    ).values(state=_APPROVED, consumed_at=None)).rowcount)


def list_approvals(conn: Connection, *, states: tuple[str, ...] | None, expired: bool | None,
                   now: float, after: tuple[float, str] | None, limit: int
                   ) -> list[ApprovalRow]:
    """Newest first (``created_at``, then ``id``), at most ``limit``.

    ``states``: stored states to keep (None: all); ``expired``: True keeps rows with
    ``expires_at <= now``, False those after ``now``, None both; ``after``: the
    ``(created_at, id)`` of the last row of the previous page.
    """
    c = approvals.c
    query = select(approvals)
    if states is not None:
        query = query.where(c.state == states[0] if len(states) == 1 else c.state.in_(states))
    if expired is True:
        query = query.where(c.expires_at <= now)
    elif expired is False:
        query = query.where(c.expires_at > now)
    if after is not None:
        created, approval_id = after
        query = query.where(or_(c.created_at < created,
                                and_(c.created_at == created, c.id < approval_id)))
    query = query.order_by(c.created_at.desc(), c.id.desc()).limit(limit)
    return [_from_row(row) for row in conn.execute(query)]
