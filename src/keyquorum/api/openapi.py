"""The OpenAPI document: the whole HTTP contract, built from the code that serves it.

FastAPI describes the routes it serves; this adds what it cannot know:

- the crypto routes answered by the front (``crypto_routes``), from the same
  route table and item models the pipeline uses;
- every request body, as the strict model the route parses with
  (``bodies.request_body``), so a field rule has one home;
- every error status a route can answer, with the one error body of
  ``api.errors`` (FastAPI's 422, which this server never sends, is dropped);
- answers that are not JSON (metrics, audit export, backups, HTML reports);
- the bearer token, and the routes that take none.

The document is committed as ``docs/openapi.json``; a test rebuilds it and
compares, and another compares its routes with API.md's tables.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from keyquorum import __version__
from keyquorum.api.bodies import body_models
from keyquorum.api.crypto_routes import KEY_ROUTES, KEYLESS_ROUTES, CryptoRoute
from keyquorum.keys.names import MAX_NAME_LENGTH, NAME_PATTERN

TEST_ONLY_PATHS = frozenset({"/v1/sys/unsafe/clock"})
_ERROR_STATUSES = {
    "400": "invalid request (the message states the broken rule)",
    "401": "no valid token",
    "403": "the token's policies do not allow it, or dual control asks for approval",
    "404": "no such key, policy, approval or path",
    "405": "method not allowed (Allow names the ones that are)",
    "408": "headers or body too slow (the HTTP layer's timeouts)",
    "409": "conflict with the current state",
    "413": "body, batch or item too large",
    "414": "request target over 8 KiB",
    "415": "the body is not application/json",
    "429": "rate limited (Retry-After)",
    "431": "header fields too large or too many",
    "503": "sealed, or audit or storage unavailable (nothing was changed)",
}
_NOT_JSON = {
    "/metrics": "text/plain; version=0.0.4",
    "/v1/audit/export": "application/x-ndjson",
    "/v1/sys/backup": "application/vnd.keyquorum.backup",
}
_ANY_OBJECT: dict[str, Any] = {"type": "object"}
_B64 = {"type": "string", "format": "byte"}
_VERSION = {"type": "integer", "minimum": 1}
_CRYPTO_ANSWERS: dict[str, dict[str, Any]] = {
    "encrypt": {"ciphertext": {"type": "string"}, "key_version": _VERSION},
    "decrypt": {"plaintext": _B64, "key": {"type": "string"}, "key_version": _VERSION},
    "reencrypt": {"ciphertext": {"type": "string"}, "key": {"type": "string"},
                  "key_version": _VERSION},
    "datakey": {"ciphertext": {"type": "string"}, "plaintext": _B64, "key_version": _VERSION},
    "encrypt-oaep": {"ciphertext": _B64, "key_version": _VERSION},
    "decrypt-oaep": {"plaintext": _B64, "key": {"type": "string"}, "key_version": _VERSION},
    "sign": {"signature": _B64, "key_version": _VERSION},
    "verify": {"valid": {"type": "boolean"}, "key_version": _VERSION},
    "mac": {"mac": _B64, "key_version": _VERSION},
    "verify-mac": {"valid": {"type": "boolean"}, "key_version": _VERSION},
    "decapsulate": {"shared_secret": _B64, "key_version": _VERSION},
    "random": {"random": _B64},
}
_OPTIONAL_ANSWER_FIELDS = {"datakey": {"plaintext"}}

ERROR_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                       "request_id": {"type": "string"}},
        "additionalProperties": True}},
    "additionalProperties": False,
}


def build_document(app: FastAPI, *, test_clock: bool = False) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app`` plus the front's crypto routes."""
    document = get_openapi(title="keyquorum", version=__version__,
                           description=_DESCRIPTION, routes=app.routes)
    document["paths"] = {path: item for path, item in document["paths"].items()
                         if test_clock or path not in TEST_ONLY_PATHS}
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    for model in body_models():
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in schema.pop("$defs", {}).items():
            schemas.setdefault(name, definition)
        schemas[model.__name__] = schema
    schemas["Error"] = ERROR_BODY
    document["components"]["securitySchemes"] = {
        "token": {"type": "http", "scheme": "bearer",
                  "description": "a keyquorum token (POST /v1/auth/tokens)"}}
    document["security"] = [{"token": []}]
    for path, segment_route in _crypto_paths():
        document["paths"][path] = {"post": _crypto_operation(path, *segment_route)}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            _finish(path, method, operation)
    document["paths"] = dict(sorted(document["paths"].items()))
    return document


def _crypto_paths() -> list[tuple[str, tuple[str, CryptoRoute]]]:
    paths = [(f"/v1/keys/{{name}}/{segment}", (segment, route))
             for segment, route in KEY_ROUTES.items()]
    paths += [(path, (path.rsplit("/", 1)[1], route)) for path, route in KEYLESS_ROUTES.items()]
    return paths


def _crypto_operation(path: str, segment: str, route: CryptoRoute) -> dict[str, Any]:
    model = route.model.__name__
    answer_fields = _CRYPTO_ANSWERS[segment]
    required = sorted(set(answer_fields) - _OPTIONAL_ANSWER_FIELDS.get(segment, set()))
    answer = {"type": "object", "properties": answer_fields, "required": required}
    item = {"$ref": f"#/components/schemas/{model}"}
    operation: dict[str, Any] = {
        "operationId": f"crypto_{segment.replace('-', '_')}"
                       + ("_by_key" if path.startswith("/v1/keys/") else ""),
        "summary": f"{segment} (one item, or a batch of items)",
        "tags": ["crypto"],
        "requestBody": {"required": not route.empty_body_ok, "content": {"application/json": {
            "schema": {"oneOf": [item, {
                "type": "object", "required": ["batch"], "additionalProperties": False,
                "properties": {"batch": {
                    "type": "array", "minItems": 1,
                    "description": f"items as {model}; each is typed on its own, and a "
                                   "malformed item answers its own error without failing "
                                   "the others (API.md, Batches)",
                    "items": {}}}}]}}}},
        "responses": {"200": {"description": "the item's answer, or one per batch item",
                              "content": {"application/json": {"schema": {"oneOf": [
                                  answer,
                                  {"type": "object", "required": ["results"],
                                   "properties": {"results": {"type": "array", "items": {
                                       "oneOf": [answer,
                                                 {"$ref": "#/components/schemas/Error"}]}}}},
                              ]}}}}},
    }
    if path.startswith("/v1/keys/"):
        operation["parameters"] = [{"name": "name", "in": "path", "required": True,
                                    "description": "the key's name (segments joined by /)",
                                    "schema": {"type": "string", "minLength": 1,
                                               "maxLength": 128}}]
    return operation


KEY_NAME_SCHEMA = {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH,
                   "pattern": NAME_PATTERN}


def _finish(path: str, method: str, operation: dict[str, Any]) -> None:
    """Error answers, content types, key-name parameters and security for one operation."""
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path" and parameter["name"] == "name" \
                and path.startswith("/v1/keys/"):
            parameter["schema"] = dict(KEY_NAME_SCHEMA)  # validate_key_name's grammar
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)
    success = responses.setdefault("200", {"description": "OK"})
    media = _NOT_JSON.get(path)
    if path.startswith("/v1/reports/"):
        success["content"] = {"application/json": {"schema": _ANY_OBJECT},
                              "text/html": {"schema": {"type": "string"}}}
    elif media is not None:
        success["content"] = {media: {"schema": {"type": "string"}}}
    else:
        content = success.setdefault("content", {}).setdefault("application/json", {})
        schema = content.get("schema")
        if not schema or schema.get("type") == "string" or schema == {}:
            content["schema"] = copy.deepcopy(_ANY_OBJECT)
    for status, description in _ERROR_STATUSES.items():
        responses.setdefault(status, {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
    if path == "/v1/sys/health":  # 503 sealed answers the health body itself
        responses["503"]["content"]["application/json"]["schema"] = {
            "oneOf": [_ANY_OBJECT, {"$ref": "#/components/schemas/Error"}]}
    if (method, path) in TOKENLESS_OPERATIONS:
        operation["security"] = []


TOKENLESS_OPERATIONS = frozenset({
    ("get", "/v1/sys/health"), ("get", "/v1/sys/seal-status"), ("post", "/v1/sys/init"),
    ("post", "/v1/sys/unseal"), ("get", "/v1/sys/rekey"), ("post", "/v1/sys/rekey/update"),
    ("get", "/v1/sys/seal-add"), ("post", "/v1/sys/seal-add/update"),
    ("post", "/v1/sys/custodians/{name}/challenge"), ("post", "/v1/sys/custodians/{name}/proof"),
    ("post", "/v1/sys/custodians/{name}/key"), ("get", "/v1/sys/custodians/{name}/share"),
    ("get", "/v1/sys/generate-root"), ("post", "/v1/sys/generate-root/init"),
    ("post", "/v1/sys/generate-root/update"), ("post", "/v1/sys/generate-root/cancel"),
})
"""The operations that take no token (the seal ceremonies and health)."""


_DESCRIPTION = (
    "The keyquorum HTTP API (docs/API.md). Every request is authorized by the token's "
    "policies and audited before its answer leaves; errors are "
    '`{"error": {"code", "message", "request_id"}}` with a stable code.')
