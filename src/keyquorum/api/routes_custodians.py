"""Custodian drills: a fresh challenge, then a proof of share possession against it.

Neither needs a token (like unseal): a custodian may hold nothing but a share,
and the proof is the credential. Both are audited, refusals included, and work
while sealed (the commitments are public). ``GET /v1/sys/custodians`` (status,
``sys:read``) is in ``routes_sys``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from keyquorum.api.bodies import parse_body, request_body
from keyquorum.api.bodies_keys import NoFields
from keyquorum.api.bodies_sys import ProveCustodian
from keyquorum.api.runner import read_json
from keyquorum.api.services import Services, services
from keyquorum.service.context import RequestContext

router = APIRouter(prefix="/v1/sys/custodians")


@router.post("/{name}/challenge", openapi_extra=request_body(NoFields, required=False))
async def challenge(name: str, request: Request,
                    s: Services = Depends(services)) -> dict[str, Any]:
    parse_body(NoFields, await read_json(request, s.core, allow_empty=True))

    def work(ctx: RequestContext) -> dict[str, Any]:
        return s.core.custodian_registry.challenge(s.core.initialized_seal_config(), name, ctx)

    return await s.runner.run(request, "sys:custodian-challenge", None,
                              work, permission=None, authenticate=False, in_thread=True)


@router.post("/{name}/proof", openapi_extra=request_body(ProveCustodian))
async def proof(name: str, request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    asked = parse_body(ProveCustodian, await read_json(request, s.core))

    def work(ctx: RequestContext) -> dict[str, Any]:
        return s.core.custodian_registry.prove(s.core.initialized_seal_config(), name,
                                               asked.challenge_id, asked.proof, ctx)

    return await s.runner.run(request, "sys:custodian-proof", None,
                              work, permission=None, authenticate=False, in_thread=True)
