"""JSON answers encoded with orjson (fast, strict) for every route."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


class JSONAnswer(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
