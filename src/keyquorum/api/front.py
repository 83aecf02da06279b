"""The outermost ASGI layer: what every request meets before any route.

- **Bodies are read with a running limit.** ``LimitedReceive`` counts bytes as
  they arrive and refuses the request the moment it passes the limit, chunked
  or not, so no route ever buffers more than the limit. Routes that answer
  without a token (init, unseal, custodian proofs, rekey shares) take at most
  ``TOKENLESS_BODY_BYTES``: anonymous callers cannot make the server hold
  megabytes (security review F6).
- **Bodies are JSON or nothing.** A request with a body must say
  ``Content-Type: application/json`` (else 415). This also stops cross-site
  "simple requests" (``text/plain`` forms) from reaching the token-less
  ceremonies (F15).
- **Every answer says: do not store me, do not sniff me.** ``Cache-Control:
  no-store`` and ``X-Content-Type-Options: nosniff`` on every answer (plaintexts,
  data keys, shares and tokens travel in them), and HSTS when TLS is on.
- **The crypto hot path** (``crypto_routes``) is answered here through the same
  pipeline (``Runner.run_crypto``) without FastAPI's per-request costs.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import MutableMapping, Sequence
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool

from keyquorum.api.crypto_routes import KEYLESS_ROUTES, CryptoRoute, match
from keyquorum.api.errors import error_body, translate
from keyquorum.api.foreign import ForeignFront
from keyquorum.api.runner import bearer_token, parse_json_body
from keyquorum.api.services import Services
from keyquorum.errors import (
    AuditUnavailable,
    InvalidRequest,
    KeyquorumError,
    TooLarge,
    Unauthenticated,
)
from keyquorum.failure_log import describe_failure
from keyquorum.service.context import RequestContext, next_request_id

Send = Any
Receive = Any
Scope = MutableMapping[str, Any]

log = logging.getLogger("keyquorum.api")

TOKENLESS_BODY_BYTES = 16 * 1024
TOKENLESS_PATHS = frozenset({
    "/v1/sys/health", "/v1/sys/seal-status", "/v1/sys/init", "/v1/sys/unseal",
    "/v1/sys/rekey", "/v1/sys/rekey/update", "/v1/sys/seal-add", "/v1/sys/seal-add/update",
    "/v1/sys/generate-root", "/v1/sys/generate-root/init", "/v1/sys/generate-root/update",
    "/v1/sys/generate-root/cancel",
})
"""Routes that run without a token (with the custodian ceremonies, ``_CUSTODIAN``);
they read at most ``TOKENLESS_BODY_BYTES``."""
_CUSTODIAN = re.compile(r"/v1/sys/custodians/[^/]+/(challenge|proof|key|share)")
EARLY_AUTH_BYTES = 64 * 1024
"""A body larger than this (or chunked) is read only after its token was checked."""


def is_tokenless(path: str) -> bool:
    return path in TOKENLESS_PATHS or _CUSTODIAN.fullmatch(path) is not None

_BASE_HEADERS = [(b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff")]
_HSTS = (b"strict-transport-security", b"max-age=63072000")


class UnsupportedMediaType(InvalidRequest):
    status = 415


class MethodNotAllowed(InvalidRequest):
    status = 405


def _is_json(content_type: bytes) -> bool:
    known = _JSON_TYPES.get(content_type)
    if known is not None:
        return known
    media = content_type.split(b";", 1)[0].strip().lower()
    answer = media == b"application/json" or (media.startswith(b"application/")
                                              and media.endswith(b"+json"))
    if len(_JSON_TYPES) < 64:  # clients send one or two spellings; a hostile one is not kept
        _JSON_TYPES[content_type] = answer
    return answer


_JSON_TYPES: dict[bytes, bool] = {}


class LimitedReceive:
    """``receive`` that refuses a body the moment it passes ``limit`` bytes."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self._receive = receive
        self._limit = limit
        self._size = 0

    async def __call__(self) -> dict[str, Any]:
        message: dict[str, Any] = await self._receive()
        if message["type"] == "http.request":
            self._size += len(message.get("body", b""))
            if self._size > self._limit:
                raise TooLarge(f"request body exceeds {self._limit} bytes")
        return message


_Headers = tuple[bytes | None, bytes | None, bool, str | None]


def _headers(scope: Scope) -> _Headers:
    """(content-length, content-type, chunked, authorization) of a request."""
    length = content_type = None
    authorization: str | None = None
    chunked = False
    for header, value in scope["headers"]:
        if header == b"content-length":
            length = value
        elif header == b"content-type":
            content_type = value
        elif header == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif header == b"authorization":
            authorization = value.decode("latin-1")
    return length, content_type, chunked, authorization


class Front:
    """ASGI app: checks every request's framing, answers crypto POSTs, passes the rest on."""

    def __init__(self, app: Any, services: Services, *, tls: bool,
                 foreign: Sequence[ForeignFront] = ()) -> None:
        self.app = app
        self.services = services
        self.foreign = tuple(foreign)
        self._extra = [*_BASE_HEADERS, *([_HSTS] if tls else [])]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self._serve(scope, receive, send)
        except Exception as exc:
            # Starlette raises an unexpected error again after its handler answered, for
            # the server to log, and uvicorn would log it with its text (a driver's
            # carries the statement's parameters): here it is logged without, and a
            # request nothing answered yet gets a 500 of the error contract.
            log.error("unexpected %s on %s %s", describe_failure(exc), scope["method"],
                      scope["path"][:256])
            payload = orjson.dumps(error_body(KeyquorumError("internal error"), None))
            with contextlib.suppress(Exception):  # the answer may have started already
                await send({"type": "http.response.start", "status": 500, "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()), *self._extra]})
                await send({"type": "http.response.body", "body": payload})

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        route = match(path) if scope["method"] == "POST" else None
        if route is not None:
            # The crypto hot path. No foreign front claims these paths ("keys", "decrypt",
            # "reencrypt" and "random" are reserved mount names; tests/api/
            # test_foreign_front.py holds every front to it), and none is token-less.
            limit = self.services.core.settings.max_body_bytes
            headers = _headers(scope)
            found = self._early_refusal(headers, limit, tokenless=False)
            refusal = await self._token_refusal_from_storage(found) \
                if isinstance(found, str) else found
            await self._answer_directly(route, scope, receive, send, limit, refusal,
                                        headers[3])
            return
        tokenless = is_tokenless(path)
        limit = TOKENLESS_BODY_BYTES if tokenless \
            else self.services.core.settings.max_body_bytes
        for front in self.foreign:  # AWS KMS, Vault transit: their own framing and creds
            if front.claims(scope):  # (token-less paths keep their small limit: F6)
                await front(scope, LimitedReceive(receive, limit), self._with_headers(send))
                return
        headers = _headers(scope)
        found = self._early_refusal(headers, limit, tokenless=tokenless)
        refusal = await self._token_refusal_from_storage(found) \
            if isinstance(found, str) else found
        if refusal is None and path in KEYLESS_ROUTES and scope["method"] != "POST":
            refusal = MethodNotAllowed(f"{path} answers POST only")
        if refusal is not None:  # answered here, headers and all
            await self._answer_directly(None, scope, receive, send, limit, refusal,
                                        headers[3])
            return
        await self.app(scope, LimitedReceive(receive, limit), self._with_headers(send))

    def _with_headers(self, send: Send) -> Send:
        extra = self._extra

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _value in message.get("headers", [])}
                message = {**message, "headers": [
                    *message.get("headers", []),
                    *(header for header in extra if header[0] not in present)]}
            await send(message)

        return sending

    def _token_refusal(self, headers: _Headers) -> KeyquorumError | str | None:
        """Refuse a request nobody could be allowed to send before reading its body.

        A token route without a token is 401 at once, whatever else is wrong with
        it; its body is read only if the request carries a token, and a large or
        chunked one only once that token was found valid: anonymous callers cannot
        make the server buffer megabytes (security review F6). A plain function (no
        coroutine per request): it answers the token, as a ``str``, when only storage
        can tell whether it is valid (``_token_refusal_from_storage``).
        """
        length, _type, chunked, authorization = headers
        if authorization is None:  # nothing else about the request matters
            return Unauthenticated("missing bearer token")
        if not chunked and (length is None or length == b"0"):
            return None
        large = chunked or (length is not None and length.isdigit()
                            and int(length) > EARLY_AUTH_BYTES)
        if not large or self.services.core.sealed:
            return None
        try:
            # From the cache on the loop; a thread only when storage must be asked (a
            # hop to the thread pool cost more than a whole 100-item AES batch's share
            # of the loop, and many of them fought over the GIL).
            token = bearer_token(authorization)
            if self.services.core.tokens.authenticate_cached(token) is None:
                return token
        except KeyquorumError as refused:
            return refused
        return None

    async def _token_refusal_from_storage(self, token: str) -> KeyquorumError | None:
        try:
            await run_in_threadpool(self.services.core.tokens.authenticate, token)
        except KeyquorumError as refused:
            return refused
        except Exception as exc:  # storage away: the answer says so, never a 500
            return translate(exc) or KeyquorumError("internal error")
        return None

    def _early_refusal(self, headers: _Headers, limit: int, *, tokenless: bool
                       ) -> KeyquorumError | str | None:
        """The framing and token checks made before any body is read, without a
        coroutine: a token (``str``) when only storage can tell whether it is valid
        (then ``_token_refusal_from_storage``)."""
        refusal = self._framing_refusal(headers, limit)
        if refusal is not None or tokenless:
            return refusal
        return self._token_refusal(headers)

    @staticmethod
    def _framing_refusal(headers: _Headers, limit: int) -> KeyquorumError | None:
        length, content_type, chunked, _authorization = headers
        if length is not None and (not length.isdigit() or int(length) > limit):
            return TooLarge(f"request body exceeds {limit} bytes") if length.isdigit() \
                else InvalidRequest("bad Content-Length")
        has_body = chunked or (length is not None and length != b"0")
        if has_body and (content_type is None or not _is_json(content_type)):
            return UnsupportedMediaType("request bodies must be application/json")
        return None

    async def _answer_directly(self, route: tuple[CryptoRoute, str | None] | None,
                               scope: Scope, receive: Receive, send: Send,
                               limit: int, refusal: KeyquorumError | None,
                               authorization: str | None) -> None:
        request_id = next_request_id()
        client = scope.get("client")
        ctx = RequestContext(request_id=request_id, client=client[0] if client else None)
        runner = self.services.runner
        operation = route[0].operation if route is not None else "http"
        name = route[1] if route is not None else None
        extra = list(self._extra)  # no-store, nosniff (and HSTS)
        try:
            if refusal is not None:
                raise refusal
            assert route is not None
            raw = await read_body(receive, limit)
            body = parse_json_body(raw, allow_empty=route[0].empty_body_ok)
            answer = await runner.run_crypto(ctx, authorization, route[0], name, body)
            status, payload = 200, orjson.dumps(answer)
        except Exception as exc:
            error = translate(exc)
            if error is None:
                error = KeyquorumError("internal error")
            if not (ctx.recorded or ctx.audited):  # refused before the pipeline (bad body)
                if route is None:
                    ctx.detail = {"method": scope["method"], "path": scope["path"][:256]}
                try:
                    await runner.record_refusal(ctx, authorization, operation, name, error)
                except AuditUnavailable as unavailable:
                    error = unavailable
                except Exception:  # not even the refusal could be recorded: fail closed
                    error = AuditUnavailable()
            status, payload = error.status, orjson.dumps(error_body(error, request_id))
            if route is None or refusal is not None:
                extra.append((b"connection", b"close"))  # the body was not read: do not reuse
            if isinstance(error, MethodNotAllowed):
                extra.append((b"allow", b"POST"))
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"x-request-id", request_id.encode()), *extra,
        ]})
        await send({"type": "http.response.body", "body": payload})


async def read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidRequest("the client went away before the body ended")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"request body exceeds {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
