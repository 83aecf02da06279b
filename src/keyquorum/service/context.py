"""Who is asking, from where, under which request id: carried through one request."""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field

from keyquorum.auth.identity import Identity


@dataclass
class RequestContext:
    request_id: str
    client: str | None = None
    identity: Identity | None = None
    # Set when a service wrote the success record inside its own transaction.
    audited: bool = False
    # Set once any audit record for this request was written (or attempted).
    recorded: bool = False
    detail: dict[str, str] = field(default_factory=dict)

    @property
    def accessor(self) -> str | None:
        return self.identity.accessor if self.identity else None


def system_context(request_id: str) -> RequestContext:
    """The scheduler's identity: background rotations and destructions are audited as it."""
    return RequestContext(request_id=request_id, client="scheduler")


# Request ids need to be unique, not secret: a per-process random prefix and a counter
# cost no system call on the hot path (uuid4 is a getrandom() per request).
_REQUEST_PREFIX = secrets.token_hex(6)
_REQUEST_COUNTER = itertools.count(1)


def next_request_id() -> str:
    return f"{_REQUEST_PREFIX}{next(_REQUEST_COUNTER):012x}"
