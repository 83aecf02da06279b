"""Rekey routes: start (``sys:seal``, dual control ``seal-change``), submit shares, status, cancel.

Submitting a share and reading the status need no token, like unseal: the
custodians hold shares, not tokens, and the nonce ties each share to the
ceremony an authorized operator started. Cancelling needs ``sys:seal``. The new
shares are never answered in the clear: each is sealed to its custodian's key.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from keyquorum.api.bodies import parse_body, request_body
from keyquorum.api.bodies_sys import StartRekey, SubmitRekeyShare
from keyquorum.api.routes_approvals import approval_id_from
from keyquorum.api.runner import read_json
from keyquorum.api.serialize_ceremonies import rekey_json
from keyquorum.api.services import Services, services
from keyquorum.auth.dual_settings import SEAL_CHANGE
from keyquorum.service.context import RequestContext
from keyquorum.service.refusal_facts import refusals_carry
from keyquorum.service.rekey import RekeyCeremony

router = APIRouter(prefix="/v1/sys/rekey")


@router.get("")
async def status(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    return await s.runner.run(request, "sys:rekey-status", None,
                              lambda _ctx: rekey_json(RekeyCeremony(s.core).status()),
                              permission=None, authenticate=False,
                              in_thread=True)


@router.post("/init", openapi_extra=request_body(StartRekey))
async def start(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    body = await read_json(request, s.core)
    approval_id = approval_id_from(request, body)
    asked = parse_body(StartRekey, body).to_domain()

    def work(ctx: RequestContext) -> dict[str, Any]:
        ceremony = RekeyCeremony(s.core)
        plan = ceremony.plan(asked)
        # A refusal from here on (dual control's included) names the plan on its record.
        with refusals_carry(plan.summary()), s.core.dual_control.guard(
                ctx, SEAL_CHANGE, None, {"rekey": body}, approval_id=approval_id,
                summary=plan.summary()) as approved:
            return rekey_json(ceremony.start(ctx, plan, facts=approved))

    return await s.runner.run(request, "sys:rekey-init", None,
                              work, permission="sys:seal", in_thread=True)


@router.post("/update", openapi_extra=request_body(SubmitRekeyShare))
async def update(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    asked = parse_body(SubmitRekeyShare, await read_json(request, s.core))

    def work(ctx: RequestContext) -> dict[str, Any]:
        return rekey_json(RekeyCeremony(s.core).submit(ctx, asked.nonce, asked.share))

    return await s.runner.run(request, "sys:rekey-update", None,
                              work, permission=None, authenticate=False, in_thread=True)


@router.delete("")
async def cancel(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    def work(ctx: RequestContext) -> dict[str, Any]:
        return rekey_json(RekeyCeremony(s.core).cancel(ctx))

    return await s.runner.run(request, "sys:rekey-cancel", None,
                              work, permission="sys:seal", in_thread=True)
