"""What a caller must pass to mint a credential (a token or an access key) of its own.

Tokens (``routes_auth``) and access keys (``routes_access_keys``) are both identities
with policies, so one set of rules decides both: a caller hands out only policies it
holds, for at most its own remaining life (``check_child_token``); every policy
named must exist; and a credential that could administer the service or approve is
itself dual-controlled.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from keyquorum.api.services import Services
from keyquorum.auth.dual_settings import TOKEN_CREATE_PRIVILEGED
from keyquorum.auth.identity import Identity
from keyquorum.auth.tokens import check_child_token
from keyquorum.clock import rfc3339
from keyquorum.errors import InvalidRequest
from keyquorum.service.context import RequestContext


def child_credential(s: Services, ctx: RequestContext, policies: tuple[str, ...] | list[str],
                     ttl: float | None, body: dict[str, Any], approval_id: str | None,
                     *, orphan: bool = False
                     ) -> tuple[float | None, AbstractContextManager[Mapping[str, str]]]:
    """The life the new credential gets, and the dual-control gate to make it inside
    (it yields the facts the credential's record carries: the approval it used).
    ``orphan``: a token not bound to the caller's life (root callers only)."""
    parent = ctx.identity
    assert parent is not None
    wanted = s.core.settings.default_token_ttl if ttl is None else ttl
    life = check_child_token(parent, policies, wanted, s.core.clock.now(), orphan=orphan)
    missing = [name for name in policies if s.core.policies.find(name) is None]
    if missing:
        raise InvalidRequest(f"no such policies: {', '.join(missing)}")
    gate: AbstractContextManager[Mapping[str, str]] = nullcontext({})
    if s.core.dual_control.token_needs_approval(policies):
        gate = s.core.dual_control.guard(ctx, TOKEN_CREATE_PRIVILEGED, None, body,
                                         approval_id=approval_id)
    return life, gate


def identity_json(identity: Identity) -> dict[str, Any]:
    """The public fields of a token's or access key's identity, as answers show them."""
    return {"accessor": identity.accessor, "name": identity.name,
            "policies": list(identity.policies), "expires_at": rfc3339(identity.expires_at),
            "created_at": rfc3339(identity.created_at)}
