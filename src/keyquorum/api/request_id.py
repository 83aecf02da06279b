"""Pure-ASGI middleware that puts the request id on every answer (cheap on the hot path)."""

from __future__ import annotations

from typing import Any

from keyquorum.service.context import next_request_id

Scope = dict[str, Any]


class RequestIdHeader:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        # Every answer carries an id, even one no route handled (unknown path, bad method).
        state = scope.setdefault("state", {})
        state.setdefault("request_id", next_request_id())

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                request_id = scope.get("state", {}).get("request_id")
                if request_id:
                    headers = [h for h in message.get("headers", []) if h[0] != b"x-request-id"]
                    headers.append((b"x-request-id", request_id.encode()))
                    message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)
