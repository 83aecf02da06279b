"""``transit/export/:type/:name(/:version)``: the material of exportable keys.

Private material (``encryption-key``, ``signing-key``, ``hmac-key``) needs the
native ``export`` permission and passes dual control's ``export`` action (an
approval id comes back as ``?approval_id=``); the key must have been created
``exportable``. ``public-key`` needs ``read``, as ``GET /v1/keys/{name}/public-key``.
The audit record names the key and the path, never the material.
"""

from __future__ import annotations

from typing import Any, cast

from keyquorum.api.runner import Audited
from keyquorum.auth.dual_settings import EXPORT
from keyquorum.crypto.export_format import vault_private_key
from keyquorum.errors import InvalidRequest
from keyquorum.keys.specs import get_spec
from keyquorum.service.context import RequestContext
from keyquorum.service.export import unsafe_export_material
from keyquorum.transit import fields
from keyquorum.transit.calls import Call
from keyquorum.transit.envelope import Answer, MethodNotAllowed
from keyquorum.transit.types import type_for_spec

_FAMILY = {"encryption-key": "aead", "signing-key": "sign", "hmac-key": "mac"}
TYPES = (*_FAMILY, "public-key")


LATEST = -1


def _version(call: Call) -> int | None:
    """The version the path names: None for every version, ``LATEST``, or a number."""
    if len(call.segments) < 4:
        return None
    if call.segments[3] in ("", "latest"):
        return LATEST
    return fields.integer({"version": call.segments[3]}, "version", low=1)


async def export(call: Call) -> Answer:
    if call.method != "GET":
        raise MethodNotAllowed("export answers GET")
    if len(call.segments) not in (3, 4) or call.segments[1] not in TYPES:
        raise InvalidRequest(f"use export/:type/:name(/:version) with type one of "
                             f"{', '.join(TYPES)}")
    kind, name, vault_name = call.segments[1], call.key_name(2), call.segments[2]
    wanted = _version(call)
    if kind == "public-key":
        return await _public(call, name, vault_name, wanted)
    approval_id = fields.text(call.body, "approval_id", max_length=64)
    core = call.services.core

    def work(ctx: RequestContext) -> Audited:
        spec = core.keys.get(name).key.spec
        if get_spec(spec).family != _FAMILY[kind]:
            raise InvalidRequest(f"{kind} is not exportable from a {type_for_spec(spec)} key")
        number = core.keys.get(name).key.primary_version if wanted == LATEST else wanted
        with core.dual_control.guard(ctx, EXPORT, name, {"type": kind},
                                     approval_id=approval_id) as approved:
            key, versions = unsafe_export_material(core, name, number)
        shown: dict[str, str] = {}
        for exported in versions:
            value = vault_private_key(spec, exported.material) if kind == "signing-key" \
                else exported.material
            shown[str(exported.version)] = value if isinstance(value, str) \
                else fields.encode_b64(value)
        answer = {"name": vault_name, "type": type_for_spec(key.spec), "keys": shown}
        return Audited(answer, None, None, detail=approved)  # the record names the approval

    exported = await call.run("export", name, work, permission="export")
    return Answer(cast("dict[str, Any]", exported))  # the pipeline answers Audited.answer


async def _public(call: Call, name: str, vault_name: str, wanted: int | None) -> Answer:
    core = call.services.core
    ops = call.services.operations

    def work(_ctx: RequestContext) -> dict[str, Any]:
        key = core.keys.get(name).key
        if not get_spec(key.spec).asymmetric:
            raise InvalidRequest("public-key export is for asymmetric keys")
        numbers = [key.primary_version if wanted == LATEST else wanted] if wanted \
            else sorted(v.version for v in key.versions)
        shown = {str(n): ops.public_key(name, n).pem for n in numbers}
        return {"name": vault_name, "type": type_for_spec(key.spec), "keys": shown}

    return Answer(await call.run("read", name, work, permission="read"))
