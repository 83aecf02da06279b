"""``GET /metrics``: Prometheus text format, for a token holding ``sys:read``.

Not anonymous: the counters are labelled with key names, and the list of keys
and how often each is used is itself sensitive. Prometheus sends the token as
``Authorization: Bearer`` (``authorization: {credentials_file: ...}`` in a
scrape config); issue it a token with only the ``operator`` role, or a policy
granting ``sys:read`` alone. Scrapes are audited like every other request, and
answer 503 ``sealed`` while the service is sealed (watch ``/v1/sys/health`` too).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from keyquorum.api.services import Services, services
from keyquorum.metrics.collector import registry_for
from keyquorum.service.context import RequestContext

router = APIRouter()


@router.get("/metrics")
async def metrics(request: Request, s: Services = Depends(services)) -> Response:
    def work(ctx: RequestContext) -> bytes:
        return generate_latest(registry_for(s.core))

    body = await s.runner.run(request, "sys:metrics", None, work, permission="sys:read",
                              in_thread=True)
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
