"""The cryptographic routes, served by a lean ASGI front instead of FastAPI's router.

Encrypt, decrypt, sign and friends are the hot path: thousands of small
requests a second. FastAPI's routing, dependency injection and middleware
stack cost more per request than the cryptography and the audit write
together, so these routes are matched and answered here, in front of the
FastAPI app, and every other path is passed through to it unchanged. They
share everything that matters with the rest of the API: the same ``Runner``
(authentication, audit before answer, fail closed), the same services, and
the same error mapping (``api.errors``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from keyquorum.api.errors import error_body, translate
from keyquorum.api.runner import parse_json_body
from keyquorum.api.services import Services
from keyquorum.errors import AuditUnavailable, InvalidRequest, KeyquorumError, TooLarge
from keyquorum.service.context import RequestContext, next_request_id
from keyquorum.service.operations import CryptoOperations, ItemResult

Work = Callable[[RequestContext, object], ItemResult]
Send = Callable[[dict[str, Any]], Any]


def _key_route(ops: CryptoOperations, operation: str, name: str) -> tuple[str, Work] | None:
    """The audit operation name and item function for ``POST /v1/keys/{name}/{operation}``."""
    routes: dict[str, tuple[str, Work]] = {
        "encrypt": ("encrypt", lambda ctx, item: ops.encrypt(ctx, name, item)),
        "decrypt": ("decrypt", lambda ctx, item: ops.decrypt(ctx, item, expected_key=name)),
        "datakey": ("datakey", lambda ctx, item: ops.datakey(ctx, name, item)),
        "sign": ("sign", lambda ctx, item: ops.sign(ctx, name, item)),
        "verify": ("verify", lambda ctx, item: ops.verify(ctx, name, item)),
        "mac": ("mac", lambda ctx, item: ops.mac(ctx, name, item)),
        "verify-mac": ("mac", lambda ctx, item: ops.verify_mac(ctx, name, item)),
        "decapsulate": ("decapsulate", lambda ctx, item: ops.decapsulate(ctx, name, item)),
    }
    return routes.get(operation)


_KEY_OPERATIONS = frozenset(
    ("encrypt", "decrypt", "datakey", "sign", "verify", "mac", "verify-mac", "decapsulate"))
_KEYLESS = {"/v1/decrypt": "decrypt", "/v1/reencrypt": "reencrypt", "/v1/random": "random"}
_EMPTY_BODY_OK = frozenset(("datakey",))


def match(path: str) -> tuple[str, str | None] | None:
    """``(operation-segment, key name or None)`` if ``path`` is a crypto route, else None."""
    if path in _KEYLESS:
        return path.rsplit("/", 1)[1], None
    if path.startswith("/v1/keys/"):
        name, _, operation = path[len("/v1/keys/"):].rpartition("/")
        if name and operation in _KEY_OPERATIONS:
            return operation, name
    return None


class CryptoFront:
    """ASGI app: crypto POSTs answered directly, everything else handed to ``app``."""

    def __init__(self, app: Any, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            route = match(scope["path"])
            if route is not None:
                await self._handle(route, scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _work(self, segment: str, name: str | None) -> tuple[str, Work]:
        ops = self.services.operations
        if name is not None:
            found = _key_route(ops, segment, name)
            assert found is not None
            return found
        if segment == "decrypt":
            return "decrypt", lambda ctx, item: ops.decrypt(ctx, item)
        if segment == "reencrypt":
            return "reencrypt", lambda ctx, item: ops.reencrypt(ctx, item)
        return "random", lambda ctx, item: ops.random(ctx, item)

    async def _read_body(self, scope: dict[str, Any], receive: Any) -> bytes:
        limit = self.services.core.settings.max_body_bytes
        for header, value in scope["headers"]:
            if header == b"content-length" and value.isdigit() and int(value) > limit:
                raise TooLarge(f"request body exceeds {limit} bytes")
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

    async def _handle(self, route: tuple[str, str | None], scope: dict[str, Any], receive: Any,
                      send: Send) -> None:
        segment, name = route
        request_id = next_request_id()
        client = scope.get("client")
        ctx = RequestContext(request_id=request_id, client=client[0] if client else None)
        authorization: str | None = None
        for header, value in scope["headers"]:
            if header == b"authorization":
                authorization = value.decode("latin-1")
                break
        operation, work = self._work(segment, name)
        try:
            raw = await self._read_body(scope, receive)
            body = parse_json_body(raw, allow_empty=segment in _EMPTY_BODY_OK)
            answer = await self.services.runner.run_items(ctx, authorization, operation, name,
                                                          body, work)
            status, payload = 200, orjson.dumps(answer)
        except Exception as exc:
            error = translate(exc)
            if error is None:
                error = KeyquorumError("internal error")
            if not (ctx.recorded or ctx.audited):  # refused before the runner (bad body)
                try:
                    await self.services.runner.record_refusal(ctx, authorization, operation,
                                                              name, error)
                except AuditUnavailable as unavailable:
                    error = unavailable
            status, payload = error.status, orjson.dumps(error_body(error, request_id))
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"x-request-id", request_id.encode()),
        ]})
        await send({"type": "http.response.body", "body": payload})
