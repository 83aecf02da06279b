"""Key lifecycle routes: thin — parse, call one service method, shape the answer."""

from __future__ import annotations

import asyncio
import re
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from keyquorum.api.bodies import parse_body, request_body
from keyquorum.api.bodies_keys import (
    CreateKey,
    DestroyVersions,
    NoFields,
    RevokeKey,
    ScheduleDeletion,
    ToggleKey,
    UpdateKey,
)
from keyquorum.api.routes_approvals import approval_id_from
from keyquorum.api.runner import Audited, read_json
from keyquorum.api.serialize import crypto_json, key_json
from keyquorum.api.services import Services, services
from keyquorum.auth.dual_settings import DESTROY_VERSIONS, REVOKE, SCHEDULE_DELETION
from keyquorum.errors import Forbidden, InvalidRequest, NotFound
from keyquorum.keys.names import MAX_NAME_LENGTH, NAME_PATTERN, validate_key_name
from keyquorum.service.context import RequestContext
from keyquorum.service.lifecycle import destroy_versions_params
from keyquorum.storage import keys_repo

router = APIRouter(prefix="/v1/keys")
KeyStateName = Literal["enabled", "disabled", "destroy-scheduled", "destroyed"]  # KeyState
MAX_PAGE = 1000


def _page_token(name: str) -> str:
    """The position after ``name``: key names are public to whoever may list them, so the
    token is the name itself, and any well-formed name is a position to resume from."""
    return name


def _after(token: str | None) -> str | None:
    if not token:
        return None
    try:
        return validate_key_name(token)
    except InvalidRequest:
        raise InvalidRequest("page_token is not one this server issued") from None


@router.post("", openapi_extra=request_body(CreateKey))
async def create_key(request: Request, s: Services = Depends(services)) -> dict[str, Any]:
    asked = parse_body(CreateKey, await read_json(request, s.core))  # names checked here

    def work(ctx: RequestContext) -> dict[str, Any]:
        return key_json(s.lifecycle.create(ctx, asked.to_domain()), s.core.keys)

    return await s.runner.run(request, "create", asked.name, work, permission="create",
                              spec=asked.spec, in_thread=True)


@router.get("")
async def list_keys(request: Request, prefix: str | None = Query(None, max_length=128),
                    state: KeyStateName | None = None, spec: str | None = None,
                    owner: str | None = None,
                    label: str | None = Query(None, pattern=r"^[^:]*:.*$"),
                    limit: int = Query(100, ge=1, le=MAX_PAGE),
                    page_token: str | None = Query(None, max_length=MAX_NAME_LENGTH,
                                                   pattern=NAME_PATTERN),
                    s: Services = Depends(services)) -> dict[str, Any]:
    label_filter: tuple[str, str] | None = None
    if label is not None:
        k, _sep, v = label.partition(":")
        label_filter = (k, v)

    def work(ctx: RequestContext) -> dict[str, Any]:
        s.core.barrier()
        assert ctx.identity is not None
        found: list[dict[str, Any]] = []
        after = _after(page_token)
        more = False
        if not s.core.authorizer.grants_anywhere(ctx.identity, "list"):
            # Filtering every key out would answer an empty list that looks like an
            # empty store; say instead what this token may not do, and what it may.
            raise Forbidden("token may not list keys (none of its policies grants list); "
                            "a key it may use is still shown by name or id "
                            "(GET /v1/keys/{name}, needs read)")
        with s.core.engine.connect() as conn:
            while len(found) < limit:
                batch = keys_repo.list_keys(conn, prefix=prefix, state=state, spec=spec,
                                            owner=owner, after=after, limit=limit)
                if not batch:
                    more = False
                    break
                for key in batch:
                    after = key.name
                    if label_filter and key.labels.get(label_filter[0]) != label_filter[1]:
                        continue
                    if s.core.authorizer.allowed(ctx.identity, "list", key.name,
                                                 client=ctx.client):
                        found.append(key_json(key, s.core.keys))
                    if len(found) >= limit:
                        break
                more = len(batch) == limit
        next_token = _page_token(found[-1]["name"]) if found and more else None
        return {"keys": found, "next_page_token": next_token}

    # Each key is filtered by the caller's ``list`` permission on it: no single subject.
    return await s.runner.run(request, "list", None, work, permission=None, in_thread=True,
                              detail={"prefix": prefix[:128]} if prefix is not None else None)


@router.get("/{name:path}/public-key")
async def public_key(request: Request, name: str,
                     version: int | None = Query(None, ge=1, le=2**31 - 1),
                     s: Services = Depends(services)) -> dict[str, Any]:
    def work(_ctx: RequestContext) -> Audited:
        found = s.operations.public_key(name, version)
        return Audited(crypto_json(found), name, found.version)

    return await s.runner.run(request, "read", name, work, permission="read")


@router.post("/{name:path}/rotate", openapi_extra=request_body(NoFields, required=False))
async def rotate(request: Request, name: str, s: Services = Depends(services)) -> dict[str, Any]:
    parse_body(NoFields, await read_json(request, s.core, allow_empty=True))

    def work(ctx: RequestContext) -> dict[str, Any]:
        return key_json(s.lifecycle.rotate(ctx, name), s.core.keys)

    return await s.runner.run(request, "rotate", name, work, permission="rotate",
                              in_thread=True)


async def _toggle(request: Request, name: str, s: Services, enabled: bool) -> dict[str, Any]:
    asked = parse_body(ToggleKey, await read_json(request, s.core, allow_empty=True))
    operation = "enable" if enabled else "disable"

    def work(ctx: RequestContext) -> dict[str, Any]:
        key = s.lifecycle.set_enabled(ctx, name, enabled, asked.version)
        return key_json(key, s.core.keys)

    return await s.runner.run(request, operation, name, work, permission=operation,
                              in_thread=True)


@router.post("/{name:path}/disable", openapi_extra=request_body(ToggleKey, required=False))
async def disable(request: Request, name: str, s: Services = Depends(services)) -> dict[str, Any]:
    return await _toggle(request, name, s, enabled=False)


@router.post("/{name:path}/enable", openapi_extra=request_body(ToggleKey, required=False))
async def enable(request: Request, name: str, s: Services = Depends(services)) -> dict[str, Any]:
    return await _toggle(request, name, s, enabled=True)


@router.post("/{name:path}/revoke", openapi_extra=request_body(RevokeKey))
async def revoke(request: Request, name: str, s: Services = Depends(services)) -> dict[str, Any]:
    body = await read_json(request, s.core)
    approval_id = approval_id_from(request, body)
    asked = parse_body(RevokeKey, body)

    def work(ctx: RequestContext) -> dict[str, Any]:
        with s.core.dual_control.guard(ctx, REVOKE, name, body,
                                       approval_id=approval_id) as approved:
            return key_json(s.lifecycle.revoke(ctx, name, asked.reason, version=asked.version,
                                               note=asked.note, facts=approved), s.core.keys)

    return await s.runner.run(request, "revoke", name, work, permission="revoke",
                              in_thread=True)


@router.post("/{name:path}/schedule-deletion",
             openapi_extra=request_body(ScheduleDeletion, required=False))
async def schedule_deletion(request: Request, name: str,
                            s: Services = Depends(services)) -> dict[str, Any]:
    body = await read_json(request, s.core, allow_empty=True)
    approval_id = approval_id_from(request, body)
    asked = parse_body(ScheduleDeletion, body)

    def work(ctx: RequestContext) -> dict[str, Any]:
        with s.core.dual_control.guard(ctx, SCHEDULE_DELETION, name, body,
                                       approval_id=approval_id) as approved:
            key = s.lifecycle.schedule_deletion(ctx, name, asked.days, facts=approved)
        answer = key_json(key, s.core.keys)
        return {**answer, "destroy_at": answer["destroy_at"]}

    return await s.runner.run(request, "delete", name, work, permission="delete",
                              in_thread=True)


@router.post("/{name:path}/cancel-deletion",
             openapi_extra=request_body(NoFields, required=False))
async def cancel_deletion(request: Request, name: str,
                          s: Services = Depends(services)) -> dict[str, Any]:
    parse_body(NoFields, await read_json(request, s.core, allow_empty=True))

    def work(ctx: RequestContext) -> dict[str, Any]:
        return key_json(s.lifecycle.cancel_deletion(ctx, name), s.core.keys)

    return await s.runner.run(request, "delete", name, work, permission="delete",
                              in_thread=True)


@router.post("/{name:path}/destroy-versions", openapi_extra=request_body(DestroyVersions))
async def destroy_versions(request: Request, name: str,
                           s: Services = Depends(services)) -> dict[str, Any]:
    """Erase the material of the versions below ``below`` (never the primary); the key
    stays in use. Dual control's ``destroy-versions`` (also guarded wherever
    ``schedule-deletion`` is: both destroy material for good)."""
    body = await read_json(request, s.core)
    approval_id = approval_id_from(request, body)
    asked = parse_body(DestroyVersions, body)

    def work(ctx: RequestContext) -> dict[str, Any]:
        with s.core.dual_control.guard(ctx, DESTROY_VERSIONS, name,
                                       destroy_versions_params(asked.below),
                                       approval_id=approval_id) as approved:
            return key_json(s.lifecycle.destroy_versions(ctx, name, asked.below,
                                                         facts=approved), s.core.keys)

    return await s.runner.run(request, "delete", name, work, permission="delete",
                              in_thread=True)


_KEY_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _name_for(s: Services, name_or_id: str) -> str:
    """The key name a path names: itself, or (for an id no key is named after) its key's name.

    Resolved before the pipeline so the permission is checked against the key's
    name, as for any other request on it; an id of no key stays as given and ends
    in ``not_found`` after authorization, like an unknown name.
    """
    if _KEY_ID.fullmatch(name_or_id) is None:
        return name_or_id
    with s.core.engine.connect() as conn:
        if keys_repo.get_key(conn, name=name_or_id) is not None:
            return name_or_id  # a key named like an id: the name wins
        key = keys_repo.get_key(conn, key_id=name_or_id)
    return key.name if key is not None else name_or_id


@router.get("/{name:path}")
async def get_key(request: Request, name: str, s: Services = Depends(services)) -> dict[str, Any]:
    """A key by name, or by id (``GET /v1/keys/31c973a1-...``)."""
    if _KEY_ID.fullmatch(name) is not None:
        name = await asyncio.to_thread(_name_for, s, name)

    def work(ctx: RequestContext) -> dict[str, Any]:
        s.core.barrier()
        with s.core.engine.connect() as conn:
            key = keys_repo.get_key(conn, name=name)
        if key is None:
            raise NotFound(f"no key named {name}")
        return key_json(key, s.core.keys)

    return await s.runner.run(request, "read", name, work, permission="read",
                              in_thread=True)


@router.patch("/{name:path}", openapi_extra=request_body(UpdateKey))
async def update_key(request: Request, name: str,
                     s: Services = Depends(services)) -> dict[str, Any]:
    changes = parse_body(UpdateKey, await read_json(request, s.core)).to_domain()

    def work(ctx: RequestContext) -> dict[str, Any]:
        return key_json(s.lifecycle.update(ctx, name, changes), s.core.keys)

    return await s.runner.run(request, "update", name, work, permission="update",
                              in_thread=True)
