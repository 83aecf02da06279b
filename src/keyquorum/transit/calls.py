"""One Vault request, and the one way a transit endpoint reaches the pipeline.

``Call.run`` is ``Runner.execute`` with the caller found from ``X-Vault-Token``
(or ``Authorization: Bearer``) as a keyquorum token, and the audit detail naming
the Vault API and path; endpoints never authorize or audit by themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from keyquorum.api.runner import Needed, Permission, Runner
from keyquorum.api.services import Services
from keyquorum.auth.identity import Identity
from keyquorum.errors import KeyquorumError, Unauthenticated
from keyquorum.service.context import RequestContext
from keyquorum.transit.mounts import Mount

T = TypeVar("T")
API = "vault-transit"


@dataclass
class Call:
    """A parsed Vault request: method (``LIST`` for lists), the mount and the path after it."""

    services: Services
    ctx: RequestContext
    method: str
    path: str  # "transit/encrypt/my-key", as the audit record names it
    segments: list[str]
    body: dict[str, Any]
    token: str | None
    mount: Mount | None = None
    warnings: list[str] = field(default_factory=list)
    in_batch: bool = False  # batch items get a context (and record) each

    @property
    def runner(self) -> Runner:
        return self.services.runner

    @property
    def authorization(self) -> str | None:
        return f"Bearer {self.token}" if self.token else None

    def identity(self, ctx: RequestContext) -> Identity:
        if not self.token:
            raise Unauthenticated("missing client token")
        return self.runner.authenticate(self.authorization, ctx)

    async def identity_on_loop(self, ctx: RequestContext) -> Identity:
        """``identity`` for the event loop (storage only from a thread)."""
        if not self.token:
            raise Unauthenticated("missing client token")
        return await self.runner.authenticate_on_loop(self.authorization, ctx)

    async def run(self, operation: str, key: str | None, work: Callable[[RequestContext], T],
                  *, permission: Permission, in_thread: bool = True,
                  spec: str | None = None, detail: dict[str, str] | None = None) -> T:
        """One audited operation through the native pipeline (raises the audited error);
        ``detail`` adds the request's own facts to the API and path every record names."""
        return await self.runner.execute(  # type: ignore[no-any-return]
            self.ctx, operation, key, work, permission=permission,
            credential=self.identity_on_loop,
            authorization=self.authorization, in_thread=in_thread, spec=spec,
            detail={"api": API, "path": self.path[:256], **(detail or {})})

    async def run_item(self, operation: str, key: str | None,
                       work: Callable[[RequestContext], T], *, permission: Needed,
                       ) -> T:
        """One item: a batch item gets its own context (request id shared), record and
        refusal; a single request is the request's own."""
        item = RequestContext(request_id=self.ctx.request_id, client=self.ctx.client) \
            if self.in_batch else self.ctx
        return await self.runner.execute(  # type: ignore[no-any-return]
            item, operation, key, work, permission=permission,
            credential=self.identity_on_loop,
            authorization=self.authorization, in_thread=True,
            detail={"api": API, "path": self.path[:256]})

    def key_name(self, index: int = 1) -> str:
        """The keyquorum key the path's segment ``index`` names under this mount."""
        assert self.mount is not None
        if len(self.segments) <= index:
            raise KeyquorumError("internal error")
        return self.mount.key_name(self.segments[index])


def batch_items(body: dict[str, Any], limit: int) -> list[dict[str, Any]] | None:
    """``batch_input`` as a list of objects, or None for a single request."""
    from keyquorum.errors import InvalidRequest, TooLarge

    items = body.get("batch_input")
    if items is None:
        return None
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise InvalidRequest("batch_input must be a non-empty list of objects")
    if len(items) > limit:
        raise TooLarge(f"batch_input holds at most {limit} items")
    return items
