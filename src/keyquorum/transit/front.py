"""The transit front: claims ``/v1/<mount>/...`` (and two Vault system paths) and answers
them in Vault's shapes through the native pipeline.

Vault clients send bodies without a JSON content type, spell lists as the
``LIST`` method or ``?list=true``, and carry their token in ``X-Vault-Token``;
this front owns that framing (``api/foreign.py``), and every refusal, whether
of the body, the path or the pipeline, is audited (or counted, when nobody
authenticated) before Vault's ``{"errors": [...]}`` answer leaves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.concurrency import run_in_threadpool

from keyquorum.api.errors import translate
from keyquorum.api.foreign import Receive, Scope, Send
from keyquorum.api.front import EARLY_AUTH_BYTES, read_body
from keyquorum.api.services import Services
from keyquorum.errors import AuditUnavailable, InvalidRequest, KeyquorumError, Unauthenticated
from keyquorum.service.context import RequestContext, next_request_id
from keyquorum.transit import (
    byok,
    crypto,
    export,
    keys,
    native_crypto,
    params,
    signing,
    tools,
    vaultseal,
    vaultsys,
)
from keyquorum.transit.calls import Call
from keyquorum.transit.envelope import (
    Answer,
    MethodNotAllowed,
    UnsupportedPath,
    error_body,
    vault_status,
)
from keyquorum.transit.mounts import DEFAULT_MOUNTS, Mount, mounts_of

Handler = Callable[[Call], Awaitable[Answer]]
_POST_ONLY: dict[str, Handler] = {
    "encrypt": native_crypto.encrypt, "decrypt": native_crypto.decrypt,
    "rewrap": native_crypto.rewrap,
    "datakey": crypto.datakey, "sign": signing.sign, "verify": signing.verify,
    "hmac": signing.hmac, "random": tools.random, "hash": tools.hash_input,
}
_NEEDS_KEY = frozenset({"encrypt", "decrypt", "rewrap", "sign", "verify", "hmac"})
_NOT_OFFERED = {
    "backup": "key backup is not supported: use keyquorum's encrypted backup "
              "(GET /v1/sys/backup)",
    "restore": "key restore is not supported: use keyquorum's backup restore",
    "cache-config": "keyquorum's key cache is not configurable through the transit API",
    "byok-export": "BYOK export is not supported",
}
_OPERATIONS = {"keys": "read", "export": "export", "wrapping_key": "import", "datakey": "datakey",
               "rewrap": "reencrypt", "hmac": "mac"}


def _headers(scope: Scope) -> tuple[str | None, str | None]:
    """(X-Vault-Token, bearer token) of a request."""
    vault = bearer = None
    for name, value in scope["headers"]:
        if name == b"x-vault-token":
            vault = value.decode("latin-1").strip() or None
        elif name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                bearer = token.strip()
    return vault, bearer


def _body(raw: bytes, query: dict[str, str], method: str) -> dict[str, Any]:
    """The JSON object body (any content type), with query parameters for GET/DELETE."""
    body: dict[str, Any] = {}
    if raw.strip():
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise InvalidRequest("failed to parse JSON input") from None
        if parsed is not None and not isinstance(parsed, dict):  # `write -f` sends null
            raise InvalidRequest("the body must be a JSON object")
        body = parsed or {}
    if method in ("GET", "DELETE", "LIST"):
        for name, value in query.items():
            body.setdefault(name, value)
    return body


class TransitFront:
    """The Vault transit API at ``/v1/<mount>/`` for every configured mount."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.native: Any = None  # the native front, for Vault's seal paths (``vaultseal``)
        pairs = getattr(services.core.settings, "vault_transit_mounts", DEFAULT_MOUNTS)
        self.mounts: dict[str, Mount] = mounts_of(pairs)

    def claims(self, scope: Scope) -> bool:
        path = str(scope["path"])
        if not path.startswith("/v1/"):
            return False
        if vaultseal.claims(scope):
            return self.native is not None
        first = path[4:].partition("/")[0]
        return first in self.mounts or path[4:] in vaultsys.PATHS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if vaultseal.claims(scope):
            await vaultseal.forward(self.native, scope, receive, send)
            return
        request_id = next_request_id()
        client = scope.get("client")
        ctx = RequestContext(request_id=request_id, client=client[0] if client else None)
        vault_token, bearer = _headers(scope)
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        method = str(scope["method"]).upper()
        if method == "GET" and query.get("list") in ("true", "1"):
            method = "LIST"
        path = str(scope["path"])[4:]
        call = Call(self.services, ctx, method, path, path.split("/"), {},
                    vault_token or bearer)
        body_read = False
        try:
            await self._before_body(scope, call)
            raw = await read_body(receive, self.services.core.settings.max_body_bytes)
            body_read = True
            call.body = _body(raw, query, method)
            answer = await self._dispatch(call)
            ignored = params.unrecognized(call.segments, call.body) \
                if call.mount is not None and answer.status < 300 else None
            if ignored is not None:
                answer.warnings.append(ignored)
        except Exception as exc:
            error = translate(exc) or KeyquorumError("internal error")
            if not (ctx.recorded or ctx.audited):  # refused before the pipeline
                ctx.detail = {"api": "vault-transit", "path": path[:256]}
                try:
                    await self.services.runner.record_refusal(
                        ctx, call.authorization, self._operation(call), None, error)
                except AuditUnavailable as unavailable:
                    error = unavailable
            on_key_read = call.mount is not None and call.segments[:1] == ["keys"]
            answer = Answer(status=vault_status(error, on_key_read=on_key_read),
                            raw=error_body(error))
        await self._send(send, answer, request_id, close=not body_read)

    async def _before_body(self, scope: Scope, call: Call) -> None:
        """Refuse what nobody could be allowed to send before reading its body, as the
        native front does (security review F6): no token, no body read at all; a large
        or chunked body is read only once its token was found valid."""
        if call.path == vaultsys.LEADER:
            return
        if not call.token:
            raise Unauthenticated("missing client token")
        length, chunked = None, False
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = int(value) if value.isdigit() else None
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
        core = self.services.core
        if (chunked or (length or 0) > EARLY_AUTH_BYTES) and not core.sealed:
            await run_in_threadpool(core.tokens.authenticate, call.token)

    @staticmethod
    def _operation(call: Call) -> str:
        """The audit operation of a request refused before the pipeline."""
        if call.mount is None:
            return "http"
        first = call.segments[0]
        if first in _OPERATIONS:
            return _OPERATIONS[first]
        return first if first in _POST_ONLY else "http"

    async def _dispatch(self, call: Call) -> Answer:
        if call.path in vaultsys.PATHS:
            return await vaultsys.answer(call, self.mounts)
        mount_path, _, rest = call.path.partition("/")
        call.mount = self.mounts[mount_path]
        call.segments = rest.split("/") if rest else [""]
        first = call.segments[0]
        if first == "keys":
            return await keys.handle_keys(call)
        if first == "export":
            return await export.export(call)
        if first == "wrapping_key":
            return await byok.wrapping_key(call)
        if first in _NOT_OFFERED:
            raise InvalidRequest(_NOT_OFFERED[first])
        handler = _POST_ONLY.get(first)
        if handler is None:
            raise UnsupportedPath("unsupported path")
        if call.method not in ("POST", "PUT"):
            raise MethodNotAllowed(f"{first} answers POST")
        if first in _NEEDS_KEY and len(call.segments) < 2:
            raise UnsupportedPath("unsupported path")
        return await handler(call)

    @staticmethod
    async def _send(send: Send, answer: Answer, request_id: str, *, close: bool) -> None:
        body = answer.body(request_id)
        payload = b"" if body is None else orjson.dumps(body)
        headers = [(b"content-length", str(len(payload)).encode()),
                   (b"x-request-id", request_id.encode())]
        if close:  # the body was not read: the connection cannot carry another request
            headers.append((b"connection", b"close"))
        if body is not None:
            headers.append((b"content-type", b"application/json"))
        await send({"type": "http.response.start", "status": answer.status,
                    "headers": headers})
        await send({"type": "http.response.body", "body": payload})
