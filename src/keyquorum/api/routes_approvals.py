"""Dual control routes: approvers list, read, approve and reject approval requests.

Deciding goes through the runner like every other request, so each approval
and rejection (and each refusal) is in the audit log, against the approval's
key, with the approval id and the decision in the record's detail.

``approval_id_from`` is the one place a guarded route takes the approval id a
requester re-sends: from the JSON body (removed there before the body is parsed,
so what dual control compares is the request without it; the typed bodies still
declare ``approval_id`` for the OpenAPI document) or from ``?approval_id=`` for
requests without a body.

Answers name identities by token name as well as accessor (``requester_name``,
and ``identity_name`` on each decision), since an approver recognises "alice",
not ``acc_7deb450b3ad497fa``; the name is ``null`` for an unnamed, revoked or
non-token identity. The accessor stays the identity that counts. An approval
shows the complete request (``request``: every parameter the approval is for)
beside its ``summary`` (review F7).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from keyquorum.api.bodies import parse_body, request_body
from keyquorum.api.bodies_admin import DecideApproval
from keyquorum.api.runner import Audited, read_json
from keyquorum.api.services import Services, services
from keyquorum.auth.approvals import APPROVE, PAGE_TOKEN_PATTERN, REJECT, Approval
from keyquorum.auth.dual_control import APPROVAL_ID_FIELD
from keyquorum.auth.tokens import TokenStore
from keyquorum.errors import InvalidRequest, NotFound
from keyquorum.service.context import RequestContext

router = APIRouter(prefix="/v1/approvals")
ApprovalFilter = Literal["open", "all", "pending", "approved", "rejected", "consumed", "expired"]
MAX_PAGE = 1000


def approval_id_from(request: Request, body: dict[str, Any] | None = None) -> str | None:
    """The approval id of a re-sent guarded request (body field or query), if any."""
    in_body = body.pop(APPROVAL_ID_FIELD, None) if body is not None else None
    in_query = request.query_params.get(APPROVAL_ID_FIELD)
    if in_body is not None and in_query is not None and in_body != in_query:
        raise InvalidRequest("approval_id given twice, with different values")
    value = in_body if in_body is not None else in_query
    if value is not None and (not isinstance(value, str) or not 1 <= len(value) <= 64):
        raise InvalidRequest("approval_id must be an approval request id")
    return value


def _name_of(tokens: TokenStore, accessor: str, known: dict[str, str | None]) -> str | None:
    if accessor not in known:
        try:
            known[accessor] = tokens.get(accessor).name
        except NotFound:
            known[accessor] = None
    return known[accessor]


def _answer(approval: Approval, s: Services, known: dict[str, str | None] | None = None
            ) -> dict[str, Any]:
    """The approval as JSON, with the token names of its requester and deciders added."""
    known = {} if known is None else known
    tokens = s.core.tokens
    body = approval.to_json(s.core.clock.now())
    body["requester_name"] = _name_of(tokens, approval.requester, known)
    for decision in body["decisions"]:
        decision["identity_name"] = _name_of(tokens, str(decision["identity"]), known)
    return body


@router.get("")
async def list_approvals(request: Request, state: ApprovalFilter = "open",
                         limit: int = Query(100, ge=1, le=MAX_PAGE),
                         page_token: str | None = Query(None, pattern=f"^{PAGE_TOKEN_PATTERN}$"),
                         s: Services = Depends(services)) -> dict[str, Any]:

    def work(ctx: RequestContext) -> dict[str, Any]:
        found, next_token = s.core.dual_control.visible(
            ctx, None if state == "all" else state, limit, page_token)
        known: dict[str, str | None] = {}
        return {"approvals": [_answer(a, s, known) for a in found],
                "next_page_token": next_token}

    return await s.runner.run(request, "approvals:list", None, work, permission=None,
                              in_thread=True)


@router.get("/{approval_id}")
async def show_approval(request: Request, approval_id: str,
                        s: Services = Depends(services)) -> dict[str, Any]:
    def work(ctx: RequestContext) -> Audited:
        approval = s.core.dual_control.show(ctx, approval_id)
        return Audited(_answer(approval, s), approval.key, None)

    return await s.runner.run(request, "approvals:read", None, work, permission=None,
                              in_thread=True, detail={"approval_id": approval_id[:64]})


async def _decide(request: Request, approval_id: str, decision: str,
                  s: Services) -> dict[str, Any]:
    asked = parse_body(DecideApproval, await read_json(request, s.core, allow_empty=True))

    def work(ctx: RequestContext) -> Audited:
        approval = s.core.dual_control.decide(ctx, approval_id, decision, asked.note)
        return Audited(_answer(approval, s), approval.key, None)

    return await s.runner.run(request, decision, None, work, permission=None,
                              in_thread=True)


@router.post("/{approval_id}/approve",
             openapi_extra=request_body(DecideApproval, required=False))
async def approve(request: Request, approval_id: str,
                  s: Services = Depends(services)) -> dict[str, Any]:
    return await _decide(request, approval_id, APPROVE, s)


@router.post("/{approval_id}/reject",
             openapi_extra=request_body(DecideApproval, required=False))
async def reject(request: Request, approval_id: str,
                 s: Services = Depends(services)) -> dict[str, Any]:
    return await _decide(request, approval_id, REJECT, s)
