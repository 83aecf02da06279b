"""Front ends that speak another product's protocol (AWS KMS, Vault transit).

A foreign front claims the requests of its protocol before the native framing
checks (its clients send their own content types and credentials), and answers
them through the same pipeline as native routes: ``Runner.execute`` with its own
way of finding the caller (a SigV4 signature, an ``X-Vault-Token``), the
permission of the native twin, one service call and the audit record. It never
authorizes or audits by itself, so a foreign client reaches nothing a native
client with the same identity could not.

What the ``Front`` gives a foreign front: the raw ASGI ``scope``, ``receive``
wrapped with the running body limit (``LimitedReceive``: reading past the limit
raises ``TooLarge``), and ``send`` that adds the no-store, nosniff (and HSTS)
headers to every answer.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, Protocol

Scope = MutableMapping[str, Any]
Receive = Any
Send = Any


class ForeignFront(Protocol):
    """One foreign protocol, mounted in front of the native API."""

    def claims(self, scope: Scope) -> bool:
        """Whether this request is in this protocol (a path prefix, a header); cheap:
        it runs for every request and must not read the body."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer the request completely (status, headers, body)."""
