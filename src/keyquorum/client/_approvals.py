"""Dual control in the SDK: approval requests, decisions and the settings, with no I/O.

A guarded call (``revoke_key``, ``schedule_deletion``, ``put_policy``,
``delete_policy``, ``create_token`` of a privileged token, ``set_dual_control``
when weakening) first raises ``ApprovalRequiredError`` carrying
``approval_id``; once approvers have approved, make the same call again with
``approval_id=...``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ._models import parse_time
from ._protocol import Call, Duration, _duration, _one, _put, _segment

APPROVAL_STATES = ("open", "all", "pending", "approved", "rejected", "consumed", "expired")


@dataclass(frozen=True)
class ApprovalDecision:
    identity: str
    decision: str  # "approve" or "reject"
    at: datetime | None = None
    note: str | None = None
    identity_name: str | None = None  # the token's name, when it has one

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> ApprovalDecision:
        return cls(identity=str(body.get("identity", "")), decision=str(body.get("decision", "")),
                   at=parse_time(body.get("at")), note=body.get("note"),
                   identity_name=body.get("identity_name"))


@dataclass(frozen=True)
class Approval:
    """A dual-controlled request: what it is (the complete request, ``request``, and a
    short summary), and how far it got.

    ``state`` is pending, approved, rejected, consumed or expired. ``request`` is None
    only for requests a server stored before it kept them whole.
    """

    id: str
    operation: str
    state: str
    requester: str
    approvals: int
    required: int
    key: str | None = None
    summary: dict[str, str] | None = None
    decisions: tuple[ApprovalDecision, ...] = ()
    created_at: datetime | None = None
    expires_at: datetime | None = None
    decided_at: datetime | None = None
    consumed_at: datetime | None = None
    requester_name: str | None = None  # the requester token's name, when it has one
    request: dict[str, Any] | None = None  # every parameter the approval is for

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Approval:
        return cls(
            id=str(body["id"]), operation=str(body.get("operation", "")),
            state=str(body.get("state", "")), requester=str(body.get("requester", "")),
            approvals=int(body.get("approvals") or 0), required=int(body.get("required") or 0),
            key=body.get("key"), summary=dict(body.get("summary") or {}),
            decisions=tuple(ApprovalDecision.from_json(d) for d in body.get("decisions") or ()),
            created_at=parse_time(body.get("created_at")),
            expires_at=parse_time(body.get("expires_at")),
            decided_at=parse_time(body.get("decided_at")),
            consumed_at=parse_time(body.get("consumed_at")),
            requester_name=body.get("requester_name"),
            request=dict(body["request"]) if body.get("request") is not None else None)


@dataclass(frozen=True)
class ApprovalPage:
    approvals: tuple[Approval, ...]
    next_page_token: str | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> ApprovalPage:
        return cls(approvals=tuple(Approval.from_json(a) for a in body.get("approvals") or ()),
                   next_page_token=body.get("next_page_token") or None)


@dataclass(frozen=True)
class DualControlSettings:
    """What is in force (``approvals`` 0: off), and where it comes from."""

    approvals: int
    operations: tuple[str, ...]
    ttl: float
    enabled: bool
    config_file: dict[str, Any] | None = None
    stored: dict[str, Any] | None = None
    available_operations: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> DualControlSettings:
        return cls(approvals=int(body.get("approvals") or 0),
                   operations=tuple(body.get("operations") or ()),
                   ttl=float(body.get("ttl") or 0), enabled=bool(body.get("enabled")),
                   config_file=body.get("config_file"), stored=body.get("stored"),
                   available_operations=tuple(body.get("available_operations") or ()))


def list_approvals(*, state: str | None = None, limit: int | None = None,
                   page_token: str | None = None) -> Call[ApprovalPage]:
    """Open requests by default; ``state`` one of APPROVAL_STATES."""
    if state is not None and state not in APPROVAL_STATES:
        raise ValueError("state must be one of " + ", ".join(APPROVAL_STATES))
    params = tuple((k, str(v)) for k, v in (("state", state), ("limit", limit),
                                            ("page_token", page_token)) if v is not None)
    return Call("GET", "/v1/approvals", _one(ApprovalPage.from_json), params=params)


def get_approval(approval_id: str) -> Call[Approval]:
    return Call("GET", f"/v1/approvals/{_segment(approval_id, 'approval id')}",
                _one(Approval.from_json))


def decide(approval_id: str, decision: str, note: str | None = None) -> Call[Approval]:
    if decision not in ("approve", "reject"):
        raise ValueError("decision must be 'approve' or 'reject'")
    return Call("POST", f"/v1/approvals/{_segment(approval_id, 'approval id')}/{decision}",
                _one(Approval.from_json), json=_put({}, note=note))


def dual_control() -> Call[DualControlSettings]:
    return Call("GET", "/v1/sys/dual-control", _one(DualControlSettings.from_json))


def set_dual_control(approvals: int, *, operations: Sequence[str] | None = None,
                     ttl: Duration | None = None,
                     approval_id: str | None = None) -> Call[DualControlSettings]:
    body = _put({"approvals": approvals},
                operations=None if operations is None else list(operations),
                ttl=None if ttl is None else _duration(ttl), approval_id=approval_id)
    return Call("PUT", "/v1/sys/dual-control", _one(DualControlSettings.from_json), json=body)
