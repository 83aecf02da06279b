"""The services a route needs, found through one FastAPI dependency."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from keyquorum.api.runner import Runner
from keyquorum.auth.identity import Identity
from keyquorum.service.context import RequestContext
from keyquorum.service.core import Core
from keyquorum.service.lifecycle import KeyLifecycle
from keyquorum.service.operations import CryptoOperations
from keyquorum.service.scheduler import Scheduler


@dataclass
class Services:
    core: Core
    lifecycle: KeyLifecycle
    operations: CryptoOperations
    runner: Runner
    scheduler: Scheduler


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def authorize(s: Services, ctx: RequestContext, operation: str,
              key: str | None = None, *, spec: str | None = None) -> Identity:
    """The request's identity, if its policies allow ``operation`` (on ``key``); else Forbidden.

    The client address always goes along, for rules with a ``source`` condition;
    ``spec`` is the key spec a create asks for (rules with a ``specs`` condition).
    """
    assert ctx.identity is not None
    s.core.authorizer.authorize(ctx.identity, operation, key, client=ctx.client, spec=spec)
    return ctx.identity
