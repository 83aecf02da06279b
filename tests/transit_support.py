"""Helpers for the Vault transit tests: Vault-shaped requests over any httpx client."""

from __future__ import annotations

import base64
from typing import Any

import httpx

ENVELOPE = {"request_id", "lease_id", "renewable", "lease_duration", "data", "wrap_info",
            "warnings", "auth"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Vault:
    """Sends Vault-framed requests: no JSON content type, the token in X-Vault-Token."""

    def __init__(self, http: httpx.Client, token: str, mount: str = "transit") -> None:
        self.http = http
        self.token = token
        self.mount = mount

    def request(self, method: str, path: str, body: dict[str, Any] | None = None,
                **params: str) -> httpx.Response:
        import orjson

        content = orjson.dumps(body) if body is not None else None
        return self.http.request(method, f"/v1/{self.mount}/{path}", content=content,
                                 params=params or None,
                                 headers={"X-Vault-Token": self.token})

    def write(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.request("PUT", path, body)

    def data(self, answer: httpx.Response) -> Any:
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert set(body) == ENVELOPE, body
        return body["data"]


def errors(answer: httpx.Response, status: int) -> list[str]:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"errors"}, body
    return list(body["errors"])
