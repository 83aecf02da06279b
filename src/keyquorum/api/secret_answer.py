"""A JSON answer that carries secrets once (init's shares and root token), then wipes them.

Why (security review F10): ``operator init`` answers every share and the root
token; as Python strings and as the answer's bytes they would stay in the server's
memory, a full quorum of shares, until the allocator reused it. ``SecretAnswer``
renders the body, overwrites the secret strings at once (the body now holds the
only copy), and overwrites the body once it has been sent, unless the transport
still holds it: an answer not yet written out is never touched (wiping it would
lose the shares), and stays in memory as before.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from keyquorum.api.responses import JSONAnswer
from keyquorum.crypto.wipe import unsafe_wipe_bytes, unsafe_wipe_str

__all__ = ["SecretAnswer", "secrets_of_init"]

# References to the body after sending when nobody else holds it: the local name and
# getrefcount's own argument.
_ONLY_OURS = 2


class SecretAnswer(JSONAnswer):
    """``content`` as JSON; ``secrets`` (strings inside it) are wiped once rendered."""

    def __init__(self, content: Any, secrets: Iterable[str]) -> None:
        super().__init__(content)
        for text in secrets:
            unsafe_wipe_str(text)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            body, self.body = self.body, b""
            # Only if the transport kept no reference (it is written out).
            if isinstance(body, bytes) and sys.getrefcount(body) <= _ONLY_OURS:
                unsafe_wipe_bytes(body)


def secrets_of_init(answer: dict[str, Any]) -> list[str]:
    """The share texts and the root token in an init answer (envelopes are not secret)."""
    found = [text for text in answer.get("shares") or () if isinstance(text, str)]
    token = answer.get("root_token")
    return [*found, *([token] if isinstance(token, str) else [])]
