"""System routes: health, init, unseal, seal, custodians, dual control, and the test clock."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from keyquorum.api.bodies import parse_body, request_body
from keyquorum.api.bodies_sys import AdvanceClock, InitService, PutDualControl, Unseal
from keyquorum.api.responses import JSONAnswer
from keyquorum.api.routes_approvals import approval_id_from
from keyquorum.api.routes_seals import unseal_without_shares
from keyquorum.api.runner import read_json
from keyquorum.api.secret_answer import SecretAnswer, secrets_of_init
from keyquorum.api.serialize_sys import (
    custodian_status_json,
    dual_control_json,
    health_json,
    seal_status_json,
)
from keyquorum.api.services import Services, services
from keyquorum.api.share_body import is_placeholder, read_share_body
from keyquorum.auth.identity import Identity
from keyquorum.crypto.wipe import wipe
from keyquorum.errors import Forbidden, NotFound
from keyquorum.service.context import RequestContext
from keyquorum.service.node_handoff import raise_epoch

router = APIRouter(prefix="/v1/sys")


@router.get("/health")
async def health(s: Services = Depends(services)) -> JSONAnswer:
    health = s.core.health()
    return JSONAnswer(health_json(health), status_code=200 if health.ready else 503)


@router.get("/seal-status")
async def seal_status(s: Services = Depends(services)) -> dict[str, Any]:
    return seal_status_json(s.core.seal_status())


@router.post("/init", openapi_extra=request_body(InitService), response_model=dict[str, Any])
async def init(request: Request, s: Services = Depends(services)) -> SecretAnswer:
    asked = parse_body(InitService, await read_json(request, s.core))
    # The shares and the root token are wiped from memory once answered (review F10).
    answer = await s.runner.run(
        request, "sys:init", None,
        lambda ctx: s.core.init(asked.shares, asked.threshold, asked.custodians, ctx=ctx,
                                custodian_keys=asked.custodian_keys),
        permission=None, authenticate=False, in_thread=True)
    return SecretAnswer(answer, secrets_of_init(answer))


@router.post("/unseal", openapi_extra=request_body(Unseal))
async def unseal(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    # The share is read from the raw body into a buffer, wiped once used (review F10).
    body, buffer = await read_share_body(request, s.core.settings.max_body_bytes)
    try:
        asked = parse_body(Unseal, body)
        if asked.reset:  # only with the round's nonce (its submitters have it): review F14
            nonce = asked.nonce
            return await s.runner.run(request, "sys:unseal", None,
                                      lambda _ctx: seal_status_json(
                                          s.core.reset_unseal(nonce)),
                                      permission=None, authenticate=False)
        if asked.share is None:  # a passphrase, or the automatic seals again
            return await unseal_without_shares(request, s, asked.passphrase)
        share: str | bytearray = asked.share
        if buffer is not None and is_placeholder(asked.share, buffer):
            share = buffer
        return await s.runner.run(request, "sys:unseal", None,
                                  lambda _ctx: seal_status_json(s.core.unseal(share)),
                                  permission=None, authenticate=False,
                                  in_thread=True)
    finally:
        wipe(buffer)


@router.post("/seal")
async def seal(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    def work(ctx: RequestContext) -> dict[str, Any]:
        # The seal epoch rises with the record: every other node seals within a second
        # (runtime.node_link), and none hands the root key out until custodians unseal.
        with s.core.changes.audited(ctx, "sys:seal") as change:
            change.detail["seal_epoch"] = str(raise_epoch(change.conn, s.core.clock.now()))
        return seal_status_json(s.core.seal_status())

    answer = await s.runner.run(request, "sys:seal", None, work, permission="sys:seal",
                                in_thread=True)
    # Audited first (fail closed), then the secrets are dropped.
    answer.update(seal_status_json(s.core.seal()))
    return answer


@router.get("/custodians")
async def custodians(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    def work(ctx: RequestContext) -> dict[str, Any]:
        return custodian_status_json(s.core.custodians())

    return await s.runner.run(request, "sys:read", None, work, permission="sys:read",
                              in_thread=True)


@router.get("/dual-control")
async def get_dual_control(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    def work(_ctx: RequestContext) -> dict[str, Any]:
        return dual_control_json(s.core.dual_control.describe())

    def needed(identity: Identity) -> str | None:  # readers of sys state may see it too
        return None if s.core.authorizer.allowed(identity, "sys:read", None) \
            else "sys:dual-control"

    return await s.runner.run(request, "sys:dual-control", None, work, permission=needed,
                              in_thread=True)


@router.put("/dual-control", openapi_extra=request_body(PutDualControl))
async def put_dual_control(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    """Turn dual control on or change it; weakening it needs approval (``approval_id``)."""
    body = await read_json(request, s.core)
    approval_id = approval_id_from(request, body)
    wanted = parse_body(PutDualControl, body).to_domain()

    def work(ctx: RequestContext) -> dict[str, Any]:
        return dual_control_json(s.core.dual_control.set_settings(ctx, wanted, approval_id))

    return await s.runner.run(request, "sys:dual-control", None,
                              work, permission="sys:dual-control", in_thread=True)


@router.post("/unsafe/clock", openapi_extra=request_body(AdvanceClock))
async def unsafe_clock(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    """Test servers only (``--unsafe-test-clock``): move time forward, run the scheduler once."""
    if not s.core.settings.unsafe_test_clock:
        raise NotFound("no such path")
    seconds = parse_body(AdvanceClock, await read_json(request, s.core)).advance_seconds

    def work(ctx: RequestContext) -> dict[str, Any]:
        assert ctx.identity is not None
        if not ctx.identity.is_root:
            raise Forbidden("only the root token may move the test clock")
        s.core.clock.advance(seconds)  # type: ignore[attr-defined]
        ran = s.scheduler.tick()
        return {"now": s.core.clock.now(), "destroyed": list(ran.destroyed),
                "rotated": list(ran.rotated), "expired": list(ran.expired),
                "checkpoint": ran.checkpoint, "refused": ran.refused}

    # Not a policy permission: only the root token may move time.
    return await s.runner.run(request, "sys:clock", None, work, permission=None,
                              in_thread=True)
