"""Custodian drills: a fresh challenge, then a proof of share possession against it.

Neither needs a token (like unseal): a custodian may hold nothing but a share,
and the proof is the credential. Both are audited, refusals included, and work
while sealed (the commitments are public). ``GET /v1/sys/custodians`` (status,
``sys:read``) is in ``routes_sys``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from keyquorum.api.runner import read_json
from keyquorum.api.services import Services, services
from keyquorum.errors import InvalidRequest
from keyquorum.service.context import RequestContext

router = APIRouter(prefix="/v1/sys/custodians")


@router.post("/{name}/challenge")
async def challenge(name: str, request: Request,
                    s: Services = Depends(services)) -> dict[str, Any]:
    body = await read_json(request, s.core, allow_empty=True)
    if body:
        raise InvalidRequest("a challenge request takes no fields")

    def work(ctx: RequestContext) -> dict[str, Any]:
        return s.core.custodian_registry.challenge(s.core.initialized_seal_config(), name, ctx)

    return await s.runner.run(request, "sys:custodian-challenge", None,
                              work, permission=None, authenticate=False, in_thread=True)


@router.post("/{name}/proof")
async def proof(name: str, request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    body = await read_json(request, s.core)

    def work(ctx: RequestContext) -> dict[str, Any]:
        return s.core.custodian_registry.prove(s.core.initialized_seal_config(), name, body, ctx)

    return await s.runner.run(request, "sys:custodian-proof", None,
                              work, permission=None, authenticate=False, in_thread=True)
