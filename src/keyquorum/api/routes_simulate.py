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

from typing import Any

from fastapi import APIRouter, Depends, Request

from keyquorum.api.bodies import parse_body, request_body
from keyquorum.api.bodies_admin import SimulatePolicy
from keyquorum.api.runner import read_json
from keyquorum.api.services import Services, services
from keyquorum.auth.identity import Identity
from keyquorum.errors import InvalidRequest, NotFound
from keyquorum.service.context import RequestContext

router = APIRouter(prefix="/v1")


def _policies(s: Services, asked: SimulatePolicy) -> tuple[str, ...]:
    """The policies the question is about: a token's (by accessor) or the ones given."""
    if asked.policies is not None:
        missing = [name for name in asked.policies if s.core.policies.find(name) is None]
        if missing:
            raise InvalidRequest(f"no such policies: {', '.join(missing)}")
        return asked.policies
    assert asked.token_accessor is not None  # the model asks for exactly one
    target = s.core.tokens.get(asked.token_accessor)  # NotFound when unknown or revoked
    if target.expires_at is not None and target.expires_at <= s.core.clock.now():
        raise NotFound("no token with that accessor")  # an expired token may do nothing
    return target.policies


@router.post("/policies/simulate", openapi_extra=request_body(SimulatePolicy))
async def simulate(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    asked = parse_body(SimulatePolicy, await read_json(request, s.core))

    def work(ctx: RequestContext) -> dict[str, Any]:
        policies = _policies(s, asked)
        decision = s.core.authorizer.explain(policies, asked.operation, asked.key,
                                             client=asked.client, context=asked.context,
                                             spec=asked.spec)
        return {**decision.to_json(), "policies": list(policies)}

    def needed(identity: Identity) -> tuple[str, ...]:
        # About another token, the answer shows what that token holds: sys:tokens too.
        other = asked.token_accessor not in (None, identity.accessor)
        return ("sys:policies", "sys:tokens") if other else ("sys:policies",)

    # Audited without the context or address asked about: they may be personal data.
    facts = {"simulate": asked.operation}
    if asked.key is not None:
        facts["simulate_key"] = asked.key
    if asked.token_accessor is not None:
        facts["simulate_accessor"] = asked.token_accessor
    return await s.runner.run(request, "sys:policies", None, work, permission=needed,
                              in_thread=True, detail=facts)


__all__ = ["router"]
