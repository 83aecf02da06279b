"""Audit routes: read, verify, export, hash a value to search by, sign a checkpoint now."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from keyquorum.api.bodies import parse_body, request_body
from keyquorum.api.bodies_admin import ApprovalOnly, HashValue, PutAuditSink, VerifyAudit
from keyquorum.api.bodies_keys import NoFields
from keyquorum.api.routes_approvals import approval_id_from
from keyquorum.api.runner import read_json
from keyquorum.api.services import Services, services
from keyquorum.audit.keys import HASH_HEX_CHARS
from keyquorum.audit.log import MAX_QUERY_LIMIT, PAGE_TOKEN_PATTERN
from keyquorum.audit.records import to_json as audit_json
from keyquorum.auth.dual_settings import AUDIT_SINK_REMOVE
from keyquorum.errors import InvalidRequest
from keyquorum.service.changes import SinksChanged
from keyquorum.service.context import RequestContext

router = APIRouter(prefix="/v1/audit")
sinks_router = APIRouter(prefix="/v1/sys/audit/sinks")


_RFC3339 = (r"^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
            r"(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$")
RFC3339_QUERY = Query(None, pattern=_RFC3339, json_schema_extra={"format": "date-time"})


def _time(value: str | None) -> float | None:
    """An RFC 3339 time as seconds since the epoch (a leap second counts as :59)."""
    if value is None:
        return None
    match = re.fullmatch(_RFC3339, value)
    if match is None:
        raise InvalidRequest("since and until must be RFC 3339 times")
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    fraction, offset = match.group(7) or "", match.group(8).upper()
    try:
        zone = UTC if offset == "Z" else datetime.strptime(offset, "%z").tzinfo
        moment = datetime(year, month, day, hour, minute, min(second, 59), tzinfo=zone)
    except ValueError as exc:
        raise InvalidRequest("since and until must be RFC 3339 times") from exc
    return moment.timestamp() + (float(fraction) if fraction else 0.0)


@router.get("")
async def list_audit(request: Request, key: str | None = Query(None, max_length=256),
                     identity: str | None = Query(None, max_length=64),
                     operation: str | None = Query(None, max_length=64),
                     outcome: Literal["ok", "denied", "error"] | None = None,
                     context: str | None = Query(None, pattern=f"^[0-9a-f]{{{HASH_HEX_CHARS}}}$"),
                     since: str | None = RFC3339_QUERY, until: str | None = RFC3339_QUERY,
                     limit: int = Query(100, ge=1, le=MAX_QUERY_LIMIT),
                     page_token: str | None = Query(None, pattern=f"^{PAGE_TOKEN_PATTERN}$"),
                     s: Services = Depends(services)) -> dict[str, Any]:
    """Records, newest first; ``context`` is a hash from POST /v1/audit/hash."""
    def work(ctx: RequestContext) -> dict[str, Any]:
        records, next_token = s.core.audit.query(
            key=key, identity=identity, operation=operation, outcome=outcome, context=context,
            since=_time(since), until=_time(until), limit=limit,
            page_token=page_token)
        return {"records": [audit_json(r) for r in records], "next_page_token": next_token}

    return await s.runner.run(request, "audit:read", None, work, permission="audit:read",
                              in_thread=True)


@router.post("/verify", openapi_extra=request_body(VerifyAudit, required=False))
async def verify(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    """Check the live chain, its signed checkpoints, and any checkpoints held outside."""
    trusted = parse_body(VerifyAudit, await read_json(request, s.core, allow_empty=True)).trusted

    def work(ctx: RequestContext) -> dict[str, Any]:
        return s.core.audit_trail.verify(trusted).to_json()

    return await s.runner.run(request, "audit:verify", None, work, permission="audit:read",
                              in_thread=True)


@router.get("/export")
async def export(request: Request, s: Services = Depends(services)) -> StreamingResponse:
    """The whole chain as JSON lines (see docs/FORMAT.md), checkable offline."""
    def work(ctx: RequestContext) -> Iterator[bytes]:
        return s.core.audit_trail.export()

    lines = await s.runner.run(request, "audit:export", None, work, permission="audit:read",
                               in_thread=True)
    return StreamingResponse(lines, media_type="application/x-ndjson")


@router.get("/public-key")
async def public_key(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    """The checkpoint signing key's public half, for auditors to keep."""
    def work(ctx: RequestContext) -> dict[str, Any]:
        keys = s.core.audit_trail.keys
        return {"public_key_pem": keys.public_pem, "key_id": keys.key_id, "alg": "ed25519"}

    return await s.runner.run(request, "audit:read", None, work, permission="audit:read")


@router.post("/hash", openapi_extra=request_body(HashValue))
async def hash_value(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    """The HMAC a known context name or value is stored as, to search records by it."""
    asked = parse_body(HashValue, await read_json(request, s.core))

    def work(ctx: RequestContext) -> dict[str, Any]:
        return {"hash": s.core.audit_trail.hash_value(asked.value)}

    return await s.runner.run(request, "audit:hash", None, work, permission="audit:read")


@router.post("/checkpoint", openapi_extra=request_body(NoFields, required=False))
async def checkpoint(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    """Sign the chain head now (an operator before handing an export to an auditor)."""
    parse_body(NoFields, await read_json(request, s.core, allow_empty=True))

    def work(ctx: RequestContext) -> dict[str, Any]:
        s.core.audit_trail.keys  # noqa: B018 - raises Sealed while sealed
        made = s.core.audit_trail.checkpoint()
        if made is None:
            raise InvalidRequest("the audit log is empty: nothing to checkpoint")
        return made.to_json()

    return await s.runner.run(request, "audit:checkpoint", None,
                              work, permission="sys:audit", in_thread=True)


@sinks_router.get("")
async def list_sinks(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    """Every sink, where it was defined (config file or API), and its health."""
    def work(ctx: RequestContext) -> dict[str, Any]:
        return {"sinks": s.core.audit_sinks.describe()}

    return await s.runner.run(request, "sys:read", None, work, permission="sys:read",
                              in_thread=True)


@sinks_router.put("/{name}", openapi_extra=request_body(PutAuditSink))
async def add_sink(request: Request, name: str, s: Services = Depends(services)
                   ) -> dict[str, Any]:
    """Add a file or syslog sink at run time (kept across restarts)."""
    config = parse_body(PutAuditSink, await read_json(request, s.core)).to_domain(name)

    def work(ctx: RequestContext) -> dict[str, Any]:
        with s.core.changes.audited(ctx, "audit:sink-add",
                                    events=(SinksChanged(),)) as change:
            return s.core.audit_sinks.add(config, change.conn)

    return await s.runner.run(request, "audit:sink-add", None,
                              work, permission="sys:audit", in_thread=True,
                              detail={"sink": name[:64]})


@sinks_router.delete("/{name}", openapi_extra=request_body(ApprovalOnly, required=False))
async def remove_sink(request: Request, name: str, s: Services = Depends(services)
                      ) -> dict[str, Any]:
    """Remove an API-added sink: under dual control (``audit-sink-remove``) when it is on."""
    body = await read_json(request, s.core, allow_empty=True)
    approval_id = approval_id_from(request, body)
    parse_body(ApprovalOnly, body)

    def work(ctx: RequestContext) -> dict[str, Any]:
        s.core.audit_sinks.check_removable(name)
        with s.core.dual_control.guard(ctx, AUDIT_SINK_REMOVE, None, {"sink": name},
                                       approval_id=approval_id) as approved, \
                s.core.changes.audited(ctx, "audit:sink-remove", events=(SinksChanged(),),
                                       detail=approved) as change:
            s.core.audit_sinks.remove(name, change.conn)
        return {"name": name, "removed": True}

    return await s.runner.run(request, "audit:sink-remove", None,
                              work, permission="sys:audit", in_thread=True,
                              detail={"sink": name[:64]})


__all__ = ["router", "sinks_router"]
