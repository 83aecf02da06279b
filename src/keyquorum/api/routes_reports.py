"""Report routes: the key inventory and the compliance report, as JSON or HTML.

Both need ``reports:read`` (the ``auditor`` role). They read the live system
and change nothing; each request is audited like any other. Every answer carries
its provenance and is signed with the audit checkpoint key (``reports/signed.py``),
so ``keyquorum report verify`` checks a saved copy offline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from starlette.responses import HTMLResponse, Response

from keyquorum.api.responses import JSONAnswer
from keyquorum.api.services import Services, services
from keyquorum.reports.compliance import build_compliance
from keyquorum.reports.html import render_compliance_html, render_inventory_html
from keyquorum.reports.inventory import build_inventory
from keyquorum.reports.signed import provenance, sign_html, sign_json
from keyquorum.service.context import RequestContext
from keyquorum.service.core import Core
from keyquorum.storage import audit_repo

router = APIRouter(prefix="/v1/reports")

# The HTML pages are self-contained: forbid every fetch, script and frame, so even a
# rendering mistake could not run anything (defence in depth behind html.escape).
_HTML_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


async def _report(request: Request, s: Services, name: str, fmt: str,
                  build: Callable[[Core], Any], render: Callable[..., str]) -> Response:
    """Authorize ``reports:read``, build the report off the event loop, answer it as asked."""
    def work(ctx: RequestContext) -> Any:
        report = build(s.core)
        keys = s.core.audit_trail.keys  # unsealed: the report was just built
        with s.core.engine.connect() as conn:
            head = audit_repo.read_head(conn)
        facts = provenance(s.core.node, report.generated_at, head, keys.key_id)
        if fmt == "html":
            return sign_html(keys, render(report, facts))
        return sign_json(keys, {**report.to_json(), "provenance": facts})

    body = await s.runner.run(request, f"reports:{name}", None, work, permission="reports:read",
                              in_thread=True)
    if fmt == "html":
        return HTMLResponse(body, headers=_HTML_HEADERS)
    return JSONAnswer(body, headers={"Cache-Control": "no-store"})


ReportFormat = Literal["json", "html"]


@router.get("/inventory")
async def inventory(request: Request, format: ReportFormat = "json",
                    s: Services = Depends(services)) -> Response:
    return await _report(request, s, "inventory", format, build_inventory,
                         render_inventory_html)


@router.get("/compliance")
async def compliance(request: Request, format: ReportFormat = "json",
                     s: Services = Depends(services)) -> Response:
    return await _report(request, s, "compliance", format, build_compliance,
                         render_compliance_html)
