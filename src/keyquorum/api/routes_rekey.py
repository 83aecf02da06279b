"""Rekey routes: start (``sys:seal``, dual control ``seal-change``), submit shares, status, cancel.

Submitting a share and reading the status need no token, like unseal: the
custodians hold shares, not tokens, and the nonce ties each share to the
ceremony an authorized operator started. Cancelling needs ``sys:seal``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from keyquorum.api.routes_approvals import approval_id_from
from keyquorum.api.runner import read_json
from keyquorum.api.services import Services, services
from keyquorum.errors import InvalidRequest
from keyquorum.service.context import RequestContext
from keyquorum.service.rekey import RekeyCeremony

router = APIRouter(prefix="/v1/sys/rekey")


@router.get("")
async def status(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    return await s.runner.run(request, "sys:rekey-status", None,
                              lambda _ctx: RekeyCeremony(s.core).status(),
                              permission=None, authenticate=False,
                              in_thread=True)


@router.post("/init")
async def start(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    body = await read_json(request, s.core)
    approval_id = approval_id_from(request, body)

    def work(ctx: RequestContext) -> dict[str, Any]:
        return RekeyCeremony(s.core).start(ctx, body, approval_id)

    return await s.runner.run(request, "sys:rekey-init", None,
                              work, permission="sys:seal", in_thread=True)


@router.post("/update")
async def update(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    body = await read_json(request, s.core)
    if set(body) != {"nonce", "share"}:
        raise InvalidRequest("give {\"nonce\": ..., \"share\": ...}")

    def work(ctx: RequestContext) -> dict[str, Any]:
        return RekeyCeremony(s.core).submit(ctx, body["nonce"], body["share"])

    return await s.runner.run(request, "sys:rekey-update", None,
                              work, permission=None, authenticate=False, in_thread=True)


@router.delete("")
async def cancel(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    def work(ctx: RequestContext) -> dict[str, Any]:
        return RekeyCeremony(s.core).cancel(ctx)

    return await s.runner.run(request, "sys:rekey-cancel", None,
                              work, permission="sys:seal", in_thread=True)
