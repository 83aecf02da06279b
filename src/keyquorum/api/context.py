"""A request's ``RequestContext``, made once and kept on ``request.state``.

The pipeline (``api/runner.py``) makes it when a request reaches a route; the error
handlers (``api/errors.py``) make it for a request refused before that, so it can
still be audited. Both import it from here, so neither imports the other.
"""

from __future__ import annotations

from fastapi import Request

from keyquorum.service.context import RequestContext, next_request_id


def new_context(request: Request) -> RequestContext:
    request_id = getattr(request.state, "request_id", None) or next_request_id()
    request.state.request_id = request_id
    client = request.client.host if request.client else None
    ctx = RequestContext(request_id=request_id, client=client)
    request.state.ctx = ctx  # the error handlers audit a request no runner recorded
    return ctx
