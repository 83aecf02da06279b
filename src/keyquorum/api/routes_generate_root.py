"""Break-glass routes: a custodian quorum mints a new root token (``service.generate_root``).

No route needs a token: break glass is for when the tokens are gone. Opening an
attempt needs a share (as an unseal round does), submitting needs a share and
the attempt's nonce, cancelling needs the nonce; the status is public and never
shows the nonce. Every step but the status is audited (the steps that change
something inside their own transaction, every refusal by the pipeline).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from keyquorum.api.bodies import parse_body, request_body
from keyquorum.api.bodies_generate_root import (
    CancelGenerateRoot,
    StartGenerateRoot,
    SubmitGenerateRootShare,
)
from keyquorum.api.runner import read_json
from keyquorum.api.serialize_ceremonies import generate_root_json
from keyquorum.api.services import Services, services
from keyquorum.service.context import RequestContext
from keyquorum.service.generate_root import OP_CANCEL, OP_INIT, OP_UPDATE

router = APIRouter(prefix="/v1/sys/generate-root")


@router.get("")
async def status(s: Services = Depends(services)) -> dict[str, Any]:
    """Progress of the attempt in progress (public, like seal-status; not audited)."""
    answer = generate_root_json(await run_in_threadpool(s.generate_root.status))
    return answer


@router.post("/init", openapi_extra=request_body(StartGenerateRoot))
async def start(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    asked = parse_body(StartGenerateRoot, await read_json(request, s.core))

    def work(ctx: RequestContext) -> dict[str, Any]:
        return generate_root_json(s.generate_root.start(ctx, asked.public_key, asked.share,
                                                        asked.ttl))

    return await s.runner.run(request, OP_INIT, None, work, permission=None,
                              authenticate=False, in_thread=True)


@router.post("/update", openapi_extra=request_body(SubmitGenerateRootShare))
async def update(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    asked = parse_body(SubmitGenerateRootShare, await read_json(request, s.core))

    def work(ctx: RequestContext) -> dict[str, Any]:
        return generate_root_json(s.generate_root.submit(ctx, asked.nonce, asked.share))

    return await s.runner.run(request, OP_UPDATE, None, work, permission=None,
                              authenticate=False, in_thread=True)


@router.post("/cancel", openapi_extra=request_body(CancelGenerateRoot))
async def cancel(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    asked = parse_body(CancelGenerateRoot, await read_json(request, s.core))

    def work(ctx: RequestContext) -> dict[str, Any]:
        return generate_root_json(s.generate_root.cancel(ctx, asked.nonce))

    return await s.runner.run(request, OP_CANCEL, None, work, permission=None,
                              authenticate=False, in_thread=True)
