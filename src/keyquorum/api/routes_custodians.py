"""Custodian drills and keys: a fresh challenge, a proof of share possession against it,
a public key registered with such a proof, and the custodian's sealed share.

None needs a token (like unseal): a custodian may hold nothing but a share, and
the proof is the credential; the sealed share is a ciphertext only its
custodian's private key opens. All are audited, refusals included, and work
while sealed (the commitments are public). ``GET /v1/sys/custodians`` (status,
``sys:read``) is in ``routes_sys``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from keyquorum.api.bodies import parse_body, request_body
from keyquorum.api.bodies_keys import NoFields
from keyquorum.api.bodies_sys import ProveCustodian, RegisterCustodianKey
from keyquorum.api.runner import Audited, read_json
from keyquorum.api.serialize_sys import delivered_share_json
from keyquorum.api.services import Services, services
from keyquorum.service.context import RequestContext

router = APIRouter(prefix="/v1/sys/custodians")


@router.post("/{name}/challenge", openapi_extra=request_body(NoFields, required=False))
async def challenge(name: str, request: Request,
                    s: Services = Depends(services)) -> dict[str, Any]:
    parse_body(NoFields, await read_json(request, s.core, allow_empty=True))

    def work(ctx: RequestContext) -> Audited:
        answer = s.core.custodian_registry.challenge(s.core.initialized_seal_config(), name,
                                                     ctx)
        return Audited(answer, None, None, {
            "index": str(answer["index"]), "generation": str(answer["generation"]),
            "challenge_id": answer["challenge_id"]})

    return await s.runner.run(request, "sys:custodian-challenge", None,
                              work, permission=None, authenticate=False, in_thread=True,
                              detail={"custodian": name[:64]})


@router.post("/{name}/proof", openapi_extra=request_body(ProveCustodian))
async def proof(name: str, request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    asked = parse_body(ProveCustodian, await read_json(request, s.core))

    def work(ctx: RequestContext) -> dict[str, Any]:
        return s.core.custodian_registry.prove(s.core.initialized_seal_config(), name,
                                               asked.challenge_id, asked.proof, ctx)

    return await s.runner.run(request, "sys:custodian-proof", None,
                              work, permission=None, authenticate=False, in_thread=True,
                              detail={"custodian": name[:64],
                                      "challenge_id": asked.challenge_id})


@router.post("/{name}/key", openapi_extra=request_body(RegisterCustodianKey))
async def register_key(name: str, request: Request,
                       s: Services = Depends(services)) -> dict[str, Any]:
    """Register the custodian's public key: only with their current share's proof."""
    asked = parse_body(RegisterCustodianKey, await read_json(request, s.core))

    def work(ctx: RequestContext) -> dict[str, Any]:
        return s.core.custodian_registry.register_key(
            s.core.initialized_seal_config(), name, asked.challenge_id, asked.proof,
            asked.public_key, ctx)

    return await s.runner.run(request, "sys:custodian-key", None,
                              work, permission=None, authenticate=False, in_thread=True,
                              detail={"custodian": name[:64],
                                      "challenge_id": asked.challenge_id})


@router.get("/{name}/share")
async def delivered_share(name: str, request: Request,
                          s: Services = Depends(services)) -> dict[str, Any]:
    """The custodian's share, sealed to their key, and the fingerprints to check."""
    def work(_ctx: RequestContext) -> dict[str, Any]:
        return delivered_share_json(s.core.custodian_registry.delivered_share(
            s.core.initialized_seal_config(), name))

    return await s.runner.run(request, "sys:custodian-share", None,
                              work, permission=None, authenticate=False, in_thread=True,
                              detail={"custodian": name[:64]})
