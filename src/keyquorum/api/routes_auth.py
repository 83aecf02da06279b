"""Tokens, policies and the audit log."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request

from keyquorum.api.bodies import parse_body, request_body
from keyquorum.api.bodies_admin import CreateToken, PutPolicy
from keyquorum.api.child_credentials import child_credential, identity_json
from keyquorum.api.routes_approvals import approval_id_from
from keyquorum.api.runner import Audited, read_json
from keyquorum.api.services import Services, services
from keyquorum.auth.access_keys import AccessKeyInfo
from keyquorum.auth.dual_settings import POLICY_DELETE, POLICY_PUT
from keyquorum.auth.identity import Identity
from keyquorum.auth.policy_diff import policy_change_summary
from keyquorum.auth.policy_store import parse_policy
from keyquorum.errors import Forbidden
from keyquorum.service.changes import AccessKeyRevoked, PoliciesChanged, TokenRevoked
from keyquorum.service.context import RequestContext

router = APIRouter(prefix="/v1")


@router.post("/auth/tokens", openapi_extra=request_body(CreateToken))
async def create_token(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    body = await read_json(request, s.core)
    approval_id = approval_id_from(request, body)
    asked = parse_body(CreateToken, body)

    def work(ctx: RequestContext) -> dict[str, Any]:
        assert ctx.identity is not None
        # A non-root orphan is refused in here, before any approval request is opened.
        ttl, gate = child_credential(s, ctx, asked.policies, asked.ttl, body, approval_id,
                                     orphan=asked.orphan)
        with gate as approved, s.core.changes.audited(ctx, "sys:tokens",
                                                      detail=approved) as change:
            token, identity = s.core.tokens.create(
                policies=asked.policies, ttl=ttl, name=asked.name,
                created_by=ctx.identity.accessor, orphan=asked.orphan,
                connection=change.conn)
            change.detail["created_accessor"] = identity.accessor
            if asked.orphan:
                change.detail["orphan"] = "true"
        return {"token": token, **_token_json(identity)}

    return await s.runner.run(request, "sys:tokens", None, work, permission="sys:tokens",
                              in_thread=True)


@router.get("/auth/tokens/self")
async def token_self(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    def work(ctx: RequestContext) -> dict[str, Any]:
        assert ctx.identity is not None
        return _token_json(ctx.identity)

    return await s.runner.run(request, "token:self", None, work, permission=None)


@router.get("/auth/tokens/{accessor}")
async def lookup_token(request: Request, accessor: str,
                       s: Services = Depends(services)) -> dict[str, Any]:
    """A token by its accessor, and what revoking it would revoke along with it right now.

    A read, not ``DELETE ...?dry_run``: a client newer than the server must never have
    its preview taken for a revocation (an older server would ignore the parameter).
    """
    def work(ctx: RequestContext) -> Audited:
        assert ctx.identity is not None
        target = s.core.tokens.get(accessor)
        tokens = s.core.tokens.descendants(accessor)
        keys = _keys_of(s, [accessor, *(t.accessor for t in tokens)])
        return Audited({**_token_json(target), **_lineage_json(tokens, keys)}, None, None,
                       {"lineage": str(len(tokens) + len(keys))})

    return await s.runner.run(request, "token:lookup", None, work,
                              permission=_sys_tokens_unless_own(accessor), in_thread=True,
                              detail={"looked_up_accessor": accessor[:64]})


@router.delete("/auth/tokens/{accessor}")
async def revoke_token(request: Request, accessor: str,
                       s: Services = Depends(services)) -> dict[str, Any]:
    """Revoke a token and its lineage; ``also_revoked_details`` says who each was (``GET``
    of the token says it beforehand: the CLI asks before revoking more than the token)."""
    def work(ctx: RequestContext) -> dict[str, Any]:
        assert ctx.identity is not None
        target = s.core.tokens.get(accessor)
        if target.is_root and not ctx.identity.is_root:
            raise Forbidden("only a root token may revoke a root token")
        with s.core.changes.audited(ctx, "sys:tokens",
                                    detail={"revoked_accessor": accessor}) as change:
            # The token and everything it minted, transitively (review F13): tokens, and
            # the access keys any of them made, in this one transaction. Orphans (minted
            # by a root holder with ``orphan``) and what they made are not its lineage.
            revoked = s.core.tokens.revoke(accessor, connection=change.conn)
            keys = _keys_of(s, [t.accessor for t in revoked])
            for key in keys:
                s.access_keys.revoke(key.accessor, connection=change.conn)
            change.events.extend(TokenRevoked(gone.accessor) for gone in revoked)
            change.events.extend(AccessKeyRevoked(key.accessor) for key in keys)
            if len(revoked) > 1 or keys:
                change.detail["cascade"] = str(len(revoked) - 1 + len(keys))
        return {"accessor": accessor, "revoked": True, **_lineage_json(revoked[1:], keys)}

    return await s.runner.run(request, "sys:tokens", None, work,
                              permission=_sys_tokens_unless_own(accessor), in_thread=True)


def _sys_tokens_unless_own(accessor: str) -> Callable[[Identity], str | None]:
    """A token may always look itself up or revoke itself; any other needs ``sys:tokens``."""
    def needed(identity: Identity) -> str | None:
        return None if identity.accessor == accessor else "sys:tokens"

    return needed


def _keys_of(s: Services, accessors: list[str]) -> list[AccessKeyInfo]:
    """The unrevoked access keys any of ``accessors`` made (they die with their maker)."""
    makers = set(accessors)
    return [k for k in s.access_keys.list() if k.created_by in makers]


def _lineage_json(tokens: list[Identity], keys: list[AccessKeyInfo]) -> dict[str, Any]:
    """``also_revoked`` (accessors, as ever) and who each one is, tokens first."""
    details = [{"accessor": t.accessor, "kind": "token", "name": t.name,
                "policies": list(t.policies)} for t in tokens]
    details += [{"accessor": k.accessor, "kind": "access_key", "name": k.name,
                 "policies": list(k.policies)} for k in keys]
    return {"also_revoked": [d["accessor"] for d in details], "also_revoked_details": details}


def _token_json(identity: Identity) -> dict[str, Any]:
    """A token's public fields, and whether it is an orphan (outlives its maker's revocation)."""
    return {**identity_json(identity), "orphan": identity.orphan}


@router.get("/policies")
async def list_policies(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    def work(ctx: RequestContext) -> dict[str, Any]:
        return {"policies": [{"name": p.name, **p.to_json()} for p in s.core.policies.list()]}

    return await s.runner.run(request, "sys:policies", None, work, permission="sys:policies",
                              in_thread=True)


@router.put("/policies/{name}", openapi_extra=request_body(PutPolicy))
async def put_policy(request: Request, name: str,
                     s: Services = Depends(services)) -> dict[str, Any]:
    body = await read_json(request, s.core)
    approval_id = approval_id_from(request, body)
    asked = parse_body(PutPolicy, body)

    def work(ctx: RequestContext) -> dict[str, Any]:
        policy = parse_policy(name, asked.document())  # the rule grammar, and the name
        # Approvers see every rule and the diff against the stored policy (review F7).
        shown = (policy_change_summary(s.core.policies.find(name), policy)
                 if s.core.dual_control.settings().guards(POLICY_PUT) else None)
        with s.core.dual_control.guard(ctx, POLICY_PUT, None, {"policy": name, "body": body},
                                       approval_id=approval_id, summary=shown) as approved, \
                s.core.changes.audited(ctx, "sys:policies", events=(PoliciesChanged(),),
                                       detail=approved) as change:
            s.core.policies.put(policy, connection=change.conn)
        return {"name": policy.name, **policy.to_json()}

    return await s.runner.run(request, "sys:policies", None, work, permission="sys:policies",
                              in_thread=True, detail={"policy": name[:128]})


@router.get("/policies/{name}")
async def get_policy(request: Request, name: str,
                     s: Services = Depends(services)) -> dict[str, Any]:
    def work(ctx: RequestContext) -> dict[str, Any]:
        policy = s.core.policies.get(name)
        return {"name": policy.name, **policy.to_json()}

    return await s.runner.run(request, "sys:policies", None, work, permission="sys:policies",
                              in_thread=True)


@router.delete("/policies/{name}")
async def delete_policy(request: Request, name: str,
                        s: Services = Depends(services)) -> dict[str, Any]:
    """Bodiless: a re-sent deletion carries its approval as ``?approval_id=``."""
    approval_id = approval_id_from(request)

    def work(ctx: RequestContext) -> dict[str, Any]:
        s.core.policies.get(name)  # no approval request for a policy that is not there
        with s.core.dual_control.guard(ctx, POLICY_DELETE, None, {"policy": name},
                                       approval_id=approval_id) as approved, \
                s.core.changes.audited(ctx, "sys:policies", events=(PoliciesChanged(),),
                                       detail=approved) as change:
            s.core.policies.delete(name, connection=change.conn)
        return {"name": name, "deleted": True}

    return await s.runner.run(request, "sys:policies", None, work, permission="sys:policies",
                              in_thread=True, detail={"policy": name[:128]})


__all__ = ["router"]
