"""``POST /v1/policies/simulate``: may this identity do this operation on this key, and why?

Answers with the decision the server would take and the rule that explains it,
without doing anything. The question names either a token (by accessor: its
policies are looked up) or a list of policies, plus the request's facts that
conditions look at (context, spec, client address).

Who may ask: ``sys:policies`` — the same holders who can read every policy and
so could work the answer out by hand. Asking about *another* token also needs
``sys:tokens``, because the answer reveals which policies that token holds,
which is token metadata that ``sys:policies`` alone does not show.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from fastapi import APIRouter, Depends, Request

from keyquorum.api.bodies import parse_context
from keyquorum.api.runner import read_json
from keyquorum.api.services import Services, services
from keyquorum.auth.conditions import CONTEXT_OPERATIONS, SPEC_OPERATIONS
from keyquorum.auth.identity import Identity
from keyquorum.auth.operations import OPERATIONS
from keyquorum.auth.tokens import validate_policies
from keyquorum.errors import InvalidRequest, NotFound
from keyquorum.keys.names import validate_key_name
from keyquorum.keys.specs import get_spec
from keyquorum.service.context import RequestContext

router = APIRouter(prefix="/v1")

_FIELDS = frozenset({"token_accessor", "policies", "operation", "key", "context", "spec",
                     "client"})
KEY_OPERATIONS = frozenset({
    "create", "read", "list", "update", "rotate", "disable", "enable", "revoke", "delete",
    "encrypt", "decrypt", "reencrypt", "datakey", "sign", "verify", "mac", "decapsulate",
    "export", "import", "unprotect-compromised",
})
"""Operations the server always authorizes against a named key (``list`` per key listed)."""


def _policies(s: Services, ctx: RequestContext, body: dict[str, Any]) -> tuple[str, ...]:
    """The policies the question is about: a token's (by accessor) or the ones given."""
    if ("token_accessor" in body) == ("policies" in body):
        raise InvalidRequest("give exactly one of token_accessor or policies")
    if "policies" in body:
        names = validate_policies(body["policies"])
        missing = [name for name in names if s.core.policies.find(name) is None]
        if missing:
            raise InvalidRequest(f"no such policies: {', '.join(missing)}")
        return names
    accessor = body["token_accessor"]
    if not isinstance(accessor, str):
        raise InvalidRequest("token_accessor must be a token's accessor (acc_...)")
    target = s.core.tokens.get(accessor)  # NotFound when unknown or revoked
    if target.expires_at is not None and target.expires_at <= s.core.clock.now():
        raise NotFound("no token with that accessor")  # an expired token may do nothing
    return target.policies


def _client(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest("client must be an IPv4 or IPv6 address")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise InvalidRequest(
            f"client must be an IPv4 or IPv6 address like 10.1.2.3 or ::1, not {value!r}"
        ) from None


def _question(body: dict[str, Any]) -> tuple[str, str | None, dict[str, str] | None,
                                             str | None, str | None]:
    """(operation, key, context, spec, client) from the body, each strictly checked."""
    unknown = set(body) - _FIELDS
    if unknown:
        raise InvalidRequest(f"unknown fields: {', '.join(sorted(unknown))}")
    operation = body.get("operation")
    if not isinstance(operation, str) or operation not in OPERATIONS:
        raise InvalidRequest(f"operation must be one of the policy operations, not {operation!r}")
    key = body.get("key")
    if key is None:
        if operation in KEY_OPERATIONS:
            raise InvalidRequest(f"{operation} is done on a key: give key")
    else:
        key = validate_key_name(key)
    context = parse_context(body.get("context"))
    if context is not None and operation not in CONTEXT_OPERATIONS:
        raise InvalidRequest(f"context is part of {', '.join(sorted(CONTEXT_OPERATIONS))} "
                             f"requests, not {operation}")
    spec = body.get("spec")
    if spec is not None:
        if operation not in SPEC_OPERATIONS:
            raise InvalidRequest(f"spec is part of create requests, not {operation}")
        spec = get_spec(spec).name
    return operation, key, context, spec, _client(body.get("client"))


@router.post("/policies/simulate")
async def simulate(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    body = await read_json(request, s.core)

    def work(ctx: RequestContext) -> dict[str, Any]:
        operation, key, context, spec, client = _question(body)
        policies = _policies(s, ctx, body)
        # Audited without the context or address asked about: they may be personal data.
        ctx.detail["simulate"] = operation
        if key is not None:
            ctx.detail["simulate_key"] = key
        if "token_accessor" in body:
            ctx.detail["simulate_accessor"] = str(body["token_accessor"])
        decision = s.core.authorizer.explain(policies, operation, key, client=client,
                                             context=context, spec=spec)
        return {**decision.to_json(), "policies": list(policies)}

    def needed(identity: Identity) -> tuple[str, ...]:
        # About another token, the answer shows what that token holds: sys:tokens too.
        other = body.get("token_accessor") not in (None, identity.accessor)
        return ("sys:policies", "sys:tokens") if other else ("sys:policies",)

    return await s.runner.run(request, "sys:policies", None, work, permission=needed,
                              in_thread=True)


__all__ = ["router"]
