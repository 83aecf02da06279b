"""Small helpers shared by the HTTP tests, in process or against a server (raw HTTP, no SDK)."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def unique(prefix: str) -> str:
    """A fresh key name under ``prefix`` (tests share servers)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def assert_error(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The answer is the contract's error shape with this status and code."""
    assert answer.status_code == status, (answer.status_code, answer.text)
    error = answer.json()["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    assert error["request_id"]
    assert answer.headers["x-request-id"] == error["request_id"]
    return error  # type: ignore[no-any-return]


def ok(answer: httpx.Response) -> Any:
    assert answer.status_code == 200, (answer.status_code, answer.text)
    return answer.json()


def create_key(http: httpx.Client, name: str, spec: str, **extra: Any) -> dict[str, Any]:
    return ok(http.post("/v1/keys", json={"name": name, "spec": spec, **extra}))  # type: ignore[no-any-return]


def get_key(http: httpx.Client, name: str) -> dict[str, Any]:
    return ok(http.get(f"/v1/keys/{name}"))  # type: ignore[no-any-return]


def encrypt(http: httpx.Client, name: str, plaintext: bytes,
            context: dict[str, str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"plaintext": b64(plaintext)}
    if context is not None:
        body["context"] = context
    return ok(http.post(f"/v1/keys/{name}/encrypt", json=body))  # type: ignore[no-any-return]


def versions(key: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {v["version"]: v for v in key["versions"]}
