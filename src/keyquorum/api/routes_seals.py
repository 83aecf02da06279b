"""Seal set routes: list the seals, propose one, remove one (``/v1/sys/seals``), the
custodians' side of a proposal (``/v1/sys/seal-add``), and unseal with a passphrase or
the automatic seals (called from ``POST /v1/sys/unseal``).

Proposing and removing need ``sys:seal``, an unsealed service (a new seal wraps the
root key held in memory) and, when dual control guards ``seal-change``,
approvals. Approvers see the seal's public parameters, never a passphrase: the
approved request is re-sent by its requester alone, who types it again. A proposed
seal joins the seal set only once custodians submit a quorum of shares
(``service.seal_change``): a token alone never adds a way to the root key.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from keyquorum.api.bodies import parse_body, request_body
from keyquorum.api.bodies_admin import ApprovalOnly
from keyquorum.api.bodies_sys import SubmitRekeyShare, parse_seal, seal_request_body
from keyquorum.api.routes_approvals import approval_id_from
from keyquorum.api.runner import read_json
from keyquorum.api.serialize_ceremonies import seal_add_json
from keyquorum.api.serialize_sys import seal_status_json
from keyquorum.api.services import Services, services
from keyquorum.auth.dual_settings import SEAL_CHANGE
from keyquorum.service.context import RequestContext
from keyquorum.service.seal_change import SealAddCeremony
from keyquorum.service.seals import unseal_automatic, unseal_with_passphrase

router = APIRouter(prefix="/v1/sys/seals")


@router.get("")
async def list_seals(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    def work(ctx: RequestContext) -> dict[str, Any]:
        return {"seals": s.core.seal_set.describe(s.core.seal_config)}

    return await s.runner.run(request, "sys:read", None, work, permission="sys:read",
                              in_thread=True)


@router.post("", openapi_extra=seal_request_body())
async def add_seal(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    """``{type, id?, ...}``: wrap the root key under a new passphrase, PKCS#11 or KMS seal."""
    body = await read_json(request, s.core)
    approval_id = approval_id_from(request, body)
    seal = parse_seal(body)

    def work(ctx: RequestContext) -> dict[str, Any]:
        s.core.root_key()  # Sealed while sealed: nothing to wrap
        public = seal.public()
        with s.core.dual_control.guard(ctx, SEAL_CHANGE, None, {"change": "add", **public},
                                       approval_id=approval_id,
                                       summary={"change": "add seal", **{
                                           k: str(v) for k, v in public.items()}}) as approved:
            return seal_add_json(SealAddCeremony(s.core).start(ctx, seal, facts=approved))

    return await s.runner.run(request, "sys:seal-add", None,
                              work, permission="sys:seal", in_thread=True,
                              detail={"seal": seal.id, "seal_type": seal.kind})


@router.delete("/{seal_id}", openapi_extra=request_body(ApprovalOnly, required=False))
async def remove_seal(request: Request, seal_id: str, s: Services = Depends(services)
                      ) -> dict[str, Any]:
    """Remove a seal; Shamir, the recovery path, is refused (``seal_required``)."""
    body = await read_json(request, s.core, allow_empty=True)
    approval_id = approval_id_from(request, body)
    parse_body(ApprovalOnly, body)

    def work(ctx: RequestContext) -> dict[str, Any]:
        s.core.root_key()  # changes to the seal set are made unsealed, by an operator
        entry = s.core.seal_set.check_removable(seal_id)
        with s.core.dual_control.guard(ctx, SEAL_CHANGE, None,
                                       {"change": "remove", "id": entry.id},
                                       approval_id=approval_id,
                                       summary={"change": "remove seal", "type": entry.kind,
                                                "id": entry.id}) as approved:
            return s.core.seal_set.remove(ctx, entry, facts=approved)

    return await s.runner.run(request, "sys:seal-remove", None,
                              work, permission="sys:seal", in_thread=True,
                              detail={"seal": seal_id[:64]})


ceremony_router = APIRouter(prefix="/v1/sys/seal-add")


@ceremony_router.get("")
async def seal_add_status(request: Request, s: Services = Depends(services)
                          ) -> dict[str, Any]:
    """The proposed seal (public parameters), the nonce and the custodians' progress."""
    return await s.runner.run(request, "sys:seal-add-status", None,
                              lambda _ctx: seal_add_json(SealAddCeremony(s.core).status()),
                              permission=None, authenticate=False, in_thread=True)


@ceremony_router.post("/update", openapi_extra=request_body(SubmitRekeyShare))
async def seal_add_update(request: Request, s: Services = Depends(services)
                          ) -> dict[str, Any]:
    """``{nonce, share}``: one custodian's current share (no token, like unseal)."""
    asked = parse_body(SubmitRekeyShare, await read_json(request, s.core))

    def work(ctx: RequestContext) -> dict[str, Any]:
        return seal_add_json(SealAddCeremony(s.core).submit(ctx, asked.nonce, asked.share))

    return await s.runner.run(request, "sys:seal-add-update", None,
                              work, permission=None, authenticate=False, in_thread=True)


@ceremony_router.delete("")
async def seal_add_cancel(request: Request, s: Services = Depends(services)
                          ) -> dict[str, Any]:
    def work(ctx: RequestContext) -> dict[str, Any]:
        return seal_add_json(SealAddCeremony(s.core).cancel(ctx))

    return await s.runner.run(request, "sys:seal-add-cancel", None,
                              work, permission="sys:seal", in_thread=True)


async def unseal_without_shares(request: Request, s: Services, passphrase: str | None
                                ) -> dict[str, Any]:
    """``POST /v1/sys/unseal`` with a passphrase, or (``None``) retrying the automatic seals.

    Unauthenticated like shares. A wrong passphrase is ``wrong_passphrase``, audited
    like every unseal attempt; the passphrase itself is never logged or recorded.
    """
    def work(ctx: RequestContext) -> dict[str, Any]:
        if passphrase is not None:
            return seal_status_json(unseal_with_passphrase(s.core, ctx, passphrase))
        return seal_status_json(unseal_automatic(s.core, ctx))

    method = "passphrase" if passphrase is not None else "automatic"
    return await s.runner.run(request, "sys:unseal", None,
                              work, permission=None, authenticate=False, in_thread=True,
                              detail={"method": method})


__all__ = ["ceremony_router", "router", "unseal_without_shares"]
