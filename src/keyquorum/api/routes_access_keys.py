"""Access keys (AWS SigV4 credentials for the KMS API): create, list, revoke.

They are made, listed and revoked under the same rules as tokens (``routes_auth``):
``sys:tokens``; a caller hands out only policies it holds, for at most its own
life; a privileged one is dual-controlled; every change is audited in its own
transaction. The secret is in the creation's answer and nowhere else.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from keyquorum.api.bodies import parse_body, request_body
from keyquorum.api.bodies_admin import CreateAccessKey
from keyquorum.api.child_credentials import child_credential, identity_json
from keyquorum.api.routes_approvals import approval_id_from
from keyquorum.api.runner import read_json
from keyquorum.api.services import Services, services
from keyquorum.auth.access_keys import AccessKeyInfo
from keyquorum.clock import rfc3339
from keyquorum.errors import Forbidden
from keyquorum.service.changes import AccessKeyRevoked
from keyquorum.service.context import RequestContext

router = APIRouter(prefix="/v1/auth/access-keys")


def _info_json(info: AccessKeyInfo) -> dict[str, Any]:
    return {"access_key_id": info.access_key_id, "accessor": info.accessor,
            "name": info.name, "policies": list(info.policies),
            "created_at": rfc3339(info.created_at), "created_by": info.created_by,
            "expires_at": rfc3339(info.expires_at)}


@router.post("", openapi_extra=request_body(CreateAccessKey))
async def create_access_key(request: Request,
                            s: Services = Depends(services)) -> dict[str, Any]:
    body = await read_json(request, s.core)
    approval_id = approval_id_from(request, body)
    asked = parse_body(CreateAccessKey, body)

    def work(ctx: RequestContext) -> dict[str, Any]:
        ttl, gate = child_credential(s, ctx, asked.policies, asked.ttl, body, approval_id)
        assert ctx.identity is not None
        with gate as approved, s.core.changes.audited(ctx, "sys:tokens",
                                                      detail=approved) as change:
            access_key_id, secret, identity = s.access_keys.create(
                policies=asked.policies, ttl=ttl, name=asked.name,
                created_by=ctx.identity.accessor, connection=change.conn)
            change.detail.update(created_accessor=identity.accessor, kind="access-key")
        return {"access_key_id": access_key_id, "secret_access_key": secret,
                **identity_json(identity)}

    return await s.runner.run(request, "sys:tokens", None, work, permission="sys:tokens",
                              in_thread=True)


@router.get("")
async def list_access_keys(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    def work(_ctx: RequestContext) -> dict[str, Any]:
        s.core.barrier()
        return {"access_keys": [_info_json(info) for info in s.access_keys.list()]}

    return await s.runner.run(request, "sys:tokens", None, work, permission="sys:tokens",
                              in_thread=True)


@router.delete("/{accessor}")
async def revoke_access_key(request: Request, accessor: str,
                            s: Services = Depends(services)) -> dict[str, Any]:
    def work(ctx: RequestContext) -> dict[str, Any]:
        assert ctx.identity is not None
        s.core.barrier()
        target = s.access_keys.get(accessor)
        if target.is_root and not ctx.identity.is_root:
            raise Forbidden("only a root token may revoke a root access key")
        with s.core.changes.audited(ctx, "sys:tokens", detail={
                "revoked_accessor": accessor, "kind": "access-key"}) as change:
            s.access_keys.revoke(accessor, connection=change.conn)
            change.events.append(AccessKeyRevoked(accessor))  # every worker forgets it
        return {"accessor": accessor, "revoked": True}

    # An access key cannot call the native API (it has no bearer token), so unlike a
    # token it never revokes itself here: always sys:tokens.
    return await s.runner.run(request, "sys:tokens", None, work, permission="sys:tokens",
                              in_thread=True)


__all__ = ["router"]
