"""The one place errors become HTTP: ``{"error": {"code", "message", "request_id"}}``.

Crypto-layer exceptions never reach a client as such: any authentication
failure is the one vague ``invalid_ciphertext``; caller mistakes the crypto
layer detects (``ValueError`` subclasses) are ``invalid_request``. Anything
unexpected is a 500 with no detail (it is logged without secrets).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from keyquorum.api.context import new_context
from keyquorum.api.responses import JSONAnswer
from keyquorum.crypto.errors import CryptoError
from keyquorum.crypto.errors import InvalidCiphertext as CryptoInvalidCiphertext
from keyquorum.errors import (
    AuditUnavailable,
    InvalidCiphertext,
    InvalidRequest,
    KeyquorumError,
    NotFound,
    StorageUnavailable,
)
from keyquorum.failure_log import describe_failure
from keyquorum.storage.errors import note_storage_failure, storage_failure, transient_conflict

log = logging.getLogger("keyquorum.api")

_STATUS_CODES = {404: "not_found", 405: "invalid_request", 413: "too_large", 401: "unauthenticated"}


def translate(exc: BaseException) -> KeyquorumError | None:
    """The domain error for ``exc``, or None if it is unexpected."""
    if isinstance(exc, KeyquorumError):
        return exc
    if isinstance(exc, CryptoInvalidCiphertext):
        return InvalidCiphertext()
    if isinstance(exc, CryptoError) and isinstance(exc, ValueError):
        return InvalidRequest(str(exc))
    # A full or failing disk is an outage, not a bug: a stable 503, and one log line
    # now and then for the operator instead of an "unexpected" line per request.
    reason = storage_failure(exc)
    if reason is not None:
        note_storage_failure(reason)
        return StorageUnavailable()
    if transient_conflict(exc) is not None:  # still deadlocking after its retries
        return StorageUnavailable("concurrent changes kept colliding in the database; "
                                  "nothing was changed, retry", retry_after=1)
    return None


def error_body(error: KeyquorumError, request_id: str | None) -> dict[str, Any]:
    """``{"error": {code, message, request_id, ...details}}`` — the one error shape."""
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if request_id:
        body["request_id"] = request_id
    body.update({k: v for k, v in error.details.items() if isinstance(v, str | int | float)})
    return {"error": body}


def error_response(error: KeyquorumError, request_id: str | None) -> JSONAnswer:
    headers = {"X-Request-Id": request_id} if request_id else {}
    retry_after = error.details.get("retry_after")
    if isinstance(retry_after, int):  # rate_limited: when to come back, as RFC 9110 says
        headers["Retry-After"] = str(retry_after)
    return JSONAnswer(error_body(error, request_id), status_code=error.status,
                      headers=headers or None)


async def _audited(request: Request, error: KeyquorumError) -> KeyquorumError:
    """Make sure a refused request is in the audit log before its answer leaves.

    Requests refused before their route reached the runner (malformed body,
    unknown path, wrong method) are recorded here as operation ``http`` with the
    method and path; if even that record cannot be written the answer becomes
    ``audit_unavailable`` (fail closed).
    """
    ctx = getattr(request.state, "ctx", None) or new_context(request)
    if ctx.recorded or ctx.audited:
        return error
    ctx.detail = {"method": request.method, "path": request.url.path[:256]}
    runner = request.app.state.services.runner
    try:
        await runner.record_refusal(ctx, request.headers.get("authorization"), "http", None,
                                    error)
    except AuditUnavailable as unavailable:
        return unavailable
    except Exception:  # not even the refusal could be recorded: fail closed
        return AuditUnavailable()
    return error


def _describe_parameters(exc: RequestValidationError) -> str:
    """A query or path parameter's broken rule, in one line (never echoing the value)."""
    for error in exc.errors():
        where = [str(part) for part in error.get("loc", ()) if part not in ("query", "path")]
        context = error.get("ctx") or {}
        rule = {"less_than_equal": f"must be at most {context.get('le')}",
                "greater_than_equal": f"must be at least {context.get('ge')}",
                "int_parsing": "must be an integer",
                "literal_error": f"must be one of {context.get('expected')}",
                "string_pattern_mismatch": f"must match {context.get('pattern')}",
                "string_too_long": f"must be at most {context.get('max_length')} characters",
                }.get(str(error.get("type")), "is not valid")
        return f"{'.'.join(where) or 'a parameter'} {rule}"
    return "the request does not match the API"


def allowed_methods(request: Request) -> str:
    """``Allow`` for a 405: Starlette names only the first route matching the path."""
    scope = {**request.scope, "method": "_"}
    # The most literal routes win: /v1/auth/tokens/self is not /v1/auth/tokens/{accessor}.
    by_params: dict[tuple[int, int], set[str]] = {}
    pending = list(request.app.router.routes)
    while pending:
        route = pending.pop()
        included = getattr(route, "original_router", None)  # FastAPI's included routers
        if included is not None:
            pending.extend(included.routes)
            continue
        match, _child = route.matches(scope)
        if match is not Match.NONE:
            template = str(getattr(route, "path", ""))
            literal = len(re.sub(r"\{[^}]*\}", "", template))
            rank = (len(getattr(route, "param_convertors", {})), -literal)
            by_params.setdefault(rank, set()).update(getattr(route, "methods", None) or ())
    methods = by_params[min(by_params)] if by_params else set()
    return ", ".join(sorted(methods - {"HEAD"}))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(KeyquorumError)
    async def _domain(request: Request, exc: KeyquorumError) -> JSONAnswer:
        return error_response(await _audited(request, exc),
                              getattr(request.state, "request_id", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONAnswer:
        error = await _audited(request, InvalidRequest(_describe_parameters(exc)))
        return error_response(error, getattr(request.state, "request_id", None))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONAnswer:
        code = _STATUS_CODES.get(exc.status_code, "invalid_request")
        error: KeyquorumError = (NotFound("no such path") if code == "not_found"
                                 else InvalidRequest(str(exc.detail)))
        error = await _audited(request, error)
        response = error_response(error, getattr(request.state, "request_id", None))
        if error.code != "audit_unavailable":
            response.status_code = exc.status_code
            for name, value in (exc.headers or {}).items():
                response.headers[name] = value
            if exc.status_code == 405:  # every method some route serves on this path
                response.headers["Allow"] = allowed_methods(request)
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONAnswer:
        error = translate(exc)
        if error is None:
            log.error("unexpected %s on %s %s", describe_failure(exc), request.method,
                      request.url.path[:256])
            error = KeyquorumError("internal error")
        return error_response(await _audited(request, error),
                              getattr(request.state, "request_id", None))
