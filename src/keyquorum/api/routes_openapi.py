"""``GET /openapi.json``: the contract, to callers holding a token.

The document names every route and field, which is no secret from the people
the service serves, but there is no reason to hand it to anyone who can reach
the port (security review F15): any valid token may read it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from keyquorum.api.openapi import build_document
from keyquorum.api.services import Services, services
from keyquorum.service.context import RequestContext

router = APIRouter()


@router.get("/openapi.json")
async def openapi_document(request: Request, s: Services = Depends(services)
                           ) -> dict[str, Any]:
    def work(_ctx: RequestContext) -> dict[str, Any]:
        cached: dict[str, Any] | None = getattr(request.app.state, "openapi_document", None)
        if cached is None:
            cached = build_document(request.app, test_clock=s.core.settings.unsafe_test_clock)
            request.app.state.openapi_document = cached
        return cached

    return await s.runner.run(request, "sys:openapi", None, work, permission=None)
