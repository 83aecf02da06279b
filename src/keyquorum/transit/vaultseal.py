"""Vault's seal endpoints (``bao status``, ``bao operator init/unseal/seal``) on the native ones.

Vault clients send ``PUT`` without a JSON content type and Vault's field names
(``secret_shares``, ``secret_threshold``, ``key``) and read Vault's answer
fields (``t``, ``n``, ``type``, ``keys``, ``errors``). This shim renames the
fields, hands the request back to the native front as a JSON ``POST`` (so the
native routes, their token-less body limit and their audit do all the work),
and adds Vault's fields to the native answer: keyquorum's own fields stay, and
its own clients see them unchanged. Vault-only options that keyquorum cannot
honour (PGP-encrypted shares, recovery shares, seal migration) are passed on
untouched when set, so the native route refuses them as unknown fields.
"""

from __future__ import annotations

from typing import Any

import orjson

from keyquorum.api.foreign import Receive, Scope, Send
from keyquorum.api.front import TOKENLESS_BODY_BYTES, read_body
from keyquorum.errors import InvalidRequest, KeyquorumError

PATHS = frozenset({"/v1/sys/init", "/v1/sys/unseal", "/v1/sys/seal", "/v1/sys/seal-status"})
MARK = "keyquorum.vault_sys"
_RENAMES = {"/v1/sys/init": {"secret_shares": "shares", "secret_threshold": "threshold"},
            "/v1/sys/unseal": {"key": "share"}}
_DEFAULTS: dict[str, Any] = {"pgp_keys": None, "root_token_pgp_key": "", "stored_shares": 0,
                             "recovery_shares": 0, "recovery_threshold": 0,
                             "recovery_pgp_keys": None, "migrate": False, "reset": False}


def claims(scope: Scope) -> bool:
    """Vault's spelling only: ``PUT`` (Vault clients write with PUT; keyquorum's own use
    POST, which stays with the native front and its JSON-only framing, so a cross-site
    text/plain form can still never reach init or unseal: browsers send a cross-site
    PUT only after a CORS preflight keyquorum never grants), and ``GET seal-status``."""
    if scope["path"] not in PATHS or scope.get(MARK):
        return False
    return scope["method"] == "PUT" or (scope["method"] == "GET" and scope["path"] in (
        "/v1/sys/seal-status", "/v1/sys/init"))


def vault_request(path: str, raw: bytes) -> bytes:
    """The native body for a Vault body (keyquorum's own fields pass unchanged)."""
    if not raw.strip() or path in ("/v1/sys/seal", "/v1/sys/seal-status"):
        return raw
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest("failed to parse JSON input") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    for vault_name, native in _RENAMES.get(path, {}).items():
        if vault_name in body and native not in body:
            body[native] = body.pop(vault_name)
    for name, default in _DEFAULTS.items():
        if name in body and body[name] in (default, None, [], ""):
            del body[name]
    return orjson.dumps(body)


def vault_answer(path: str, body: dict[str, Any]) -> dict[str, Any]:
    """Vault's fields added beside keyquorum's."""
    if "error" in body and isinstance(body["error"], dict):
        body.setdefault("errors", [str(body["error"].get("message", ""))])
        return body
    if path == "/v1/sys/init" and "shares" in body:
        body.setdefault("keys", body["shares"])
        body.setdefault("keys_base64", body["shares"])
        return body
    if "sealed" in body:
        seals = body.get("seals") or [{}]
        body.setdefault("type", seals[0].get("type", "shamir") if seals else "shamir")
        body.setdefault("t", body.get("threshold") or 0)
        body.setdefault("n", body.get("shares") or 0)
        body.setdefault("nonce", "")
        body.setdefault("build_date", "")
        body.setdefault("migration", False)
        body.setdefault("recovery_seal", False)
        body.setdefault("storage_type", "keyquorum")
        body.setdefault("cluster_name", "keyquorum")
    return body


def _headers(scope: Scope, length: int) -> list[tuple[bytes, bytes]]:
    """JSON framing, and the X-Vault-Token as the bearer token the native route reads."""
    headers = [(k, v) for k, v in scope["headers"]
               if k not in (b"content-type", b"content-length", b"transfer-encoding")]
    names = {k for k, _ in headers}
    token = dict(scope["headers"]).get(b"x-vault-token")
    if token and b"authorization" not in names:
        headers.append((b"authorization", b"Bearer " + token))
    if length:
        headers += [(b"content-type", b"application/json"),
                    (b"content-length", str(length).encode())]
    return headers


async def forward(native: Any, scope: Scope, receive: Receive, send: Send) -> None:
    """Translate, let the native front answer, translate the answer back."""
    path = scope["path"]
    if path == "/v1/sys/init" and scope["method"] == "GET":  # `bao operator init -status`
        # ``initialized`` is public (seal-status and health say it without a token).
        initialized = bool(native.services.core.seal_status().initialized)
        payload = orjson.dumps({"initialized": initialized})
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})
        return
    try:
        raw = vault_request(path, await read_body(receive, TOKENLESS_BODY_BYTES))
    except KeyquorumError as error:
        payload = orjson.dumps({"errors": [error.message]})
        await send({"type": "http.response.start", "status": error.status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": payload})
        return
    method = "GET" if path == "/v1/sys/seal-status" else "POST"
    inner = {**scope, "method": method, "headers": _headers(scope, len(raw)), MARK: True}
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def capture(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await native(inner, replay, capture)
    payload = b"".join(chunks)
    try:
        answer = orjson.loads(payload)
        if isinstance(answer, dict):
            payload = orjson.dumps(vault_answer(path, answer))
    except orjson.JSONDecodeError:
        pass
    headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
    headers.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": start.get("status", 500),
                "headers": headers})
    await send({"type": "http.response.body", "body": payload})
