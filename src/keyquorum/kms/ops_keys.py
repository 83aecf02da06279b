"""KMS key management: CreateKey, DescribeKey, ListKeys, states, deletion, tags, rotation.

Each operation reads AWS's fields, turns them into the domain values the native
routes use (``NewKey``, ``KeyChanges``, a name) and makes the same lifecycle call
under the native twin's permission (``routes_keys``): create, read, list, update,
enable, disable, delete (dual-controlled ``schedule-deletion``), rotate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from keyquorum.api.bodies import parse_body
from keyquorum.api.bodies_keys import CreateKey, UpdateKey
from keyquorum.auth.dual_settings import SCHEDULE_DELETION
from keyquorum.keys.models import Key
from keyquorum.keys.specs import get_spec
from keyquorum.keys.states import KeyState
from keyquorum.kms.call import KmsCall
from keyquorum.kms.errors import KmsNotFound, KmsRequestError, unsupported
from keyquorum.kms.ids import keyquorum_purpose, keyquorum_spec, new_kms_key
from keyquorum.kms.imports import (
    PendingKey,
    all_pending,
    check_importable,
    expiry_of,
    save_pending,
)
from keyquorum.kms.key_policy import is_default_policy
from keyquorum.kms.metadata import key_metadata, pending_metadata, tags_of
from keyquorum.kms.registry import operation
from keyquorum.kms.withdrawn import is_withdrawn
from keyquorum.service.context import RequestContext
from keyquorum.storage import keys_repo

T = TypeVar("T")
MIN_ROTATION_DAYS = 90
MAX_ROTATION_DAYS = 2560
DEFAULT_ROTATION_DAYS = 365


async def on_key(call: KmsCall, operation_name: str, permission: str | None,
                 work: Callable[[RequestContext, Key], T], *, field: str = "KeyId") -> Any:
    """Resolve the key ``field`` names and run ``work`` on it under ``permission``.

    A key that does not exist is refused with NotFoundException, after the permission
    was checked on its name when the identifier gives one (``alias/<name>``).
    """
    target = await call.target(field)
    identifier = str(call.body.get(field))

    def run(ctx: RequestContext) -> T:
        return work(ctx, target.require(identifier))

    return await call.run(operation_name, target.name, run,
                          permission=permission if target.name else None)


def _changes(fields: dict[str, Any]) -> Any:
    return parse_body(UpdateKey, fields).to_domain()


def _labels_from_tags(tags: list[Any]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for tag in tags:
        if not isinstance(tag, dict) or not isinstance(tag.get("TagKey"), str) \
                or not isinstance(tag.get("TagValue", ""), str):
            raise KmsRequestError("each tag is {TagKey, TagValue} of strings", "TagException")
        if tag["TagKey"] in labels:
            raise KmsRequestError(f"duplicate tag key {tag['TagKey']}", "TagException")
        labels[tag["TagKey"]] = tag.get("TagValue", "")
    return labels


@operation("CreateKey", "create")
async def create_key(call: KmsCall) -> dict[str, Any]:
    if call.body.get("Policy") is not None and not is_default_policy(
            call.body["Policy"], call.names.account):
        raise unsupported("key policies other than AWS's default one are not supported: "
                          "access is given by the keyquorum policies attached to access "
                          "keys and tokens (docs/AWS-KMS.md)")
    if call.body.get("CustomKeyStoreId") or call.body.get("XksKeyId"):
        raise unsupported("custom key stores are not supported; keyquorum is the key store")
    if call.body.get("MultiRegion"):
        raise unsupported("multi-Region keys are not supported")
    origin = call.choice("Origin", ("AWS_KMS", "EXTERNAL", "AWS_CLOUDHSM",
                                    "EXTERNAL_KEY_STORE"), "AWS_KMS")
    if origin not in ("AWS_KMS", "EXTERNAL"):
        raise unsupported(f"Origin {origin} is not supported; use AWS_KMS (keyquorum "
                          "generates the key) or EXTERNAL (you import its material)")
    key_spec = call.text("KeySpec") or call.text("CustomerMasterKeySpec") or "SYMMETRIC_DEFAULT"
    spec = keyquorum_spec(key_spec, call.text("KeyUsage"))
    key_id, name = new_kms_key()
    fields: dict[str, Any] = {"name": name, "spec": spec}
    purpose = keyquorum_purpose(spec, call.text("KeyUsage"))
    if purpose is not None:
        fields["purpose"] = purpose
    if call.body.get("Description"):
        fields["description"] = call.body["Description"]
    if call.body.get("Tags"):
        fields["labels"] = _labels_from_tags(call.body["Tags"])
    asked = parse_body(CreateKey, fields).to_domain()
    asked = type(asked)(**{**asked.__dict__, "key_id": key_id})
    lifecycle, core = call.services.lifecycle, call.services.core
    if origin == "EXTERNAL":
        check_importable(spec)

    def work(ctx: RequestContext) -> dict[str, Any]:
        if origin == "EXTERNAL":  # the key is made when its material is imported
            pending = PendingKey(key_id=key_id, spec=spec, description=asked.description or "",
                                 labels=dict(asked.labels), created_at=core.clock.now(),
                                 created_by=ctx.accessor)
            with core.changes.audited(ctx, "create", key=name,
                                      detail={"origin": "EXTERNAL"}) as change:
                save_pending(change.conn, pending)
            return {"KeyMetadata": pending_metadata(pending, call.names)}
        return {"KeyMetadata": key_metadata(lifecycle.create(ctx, asked), call.names)}

    answer: dict[str, Any] = await call.run("create", name, work, permission="create",
                                            spec=spec)
    return answer


@operation("DescribeKey", "read")
async def describe_key(call: KmsCall) -> dict[str, Any]:
    target = await call.target()
    pending = target.pending
    if pending is not None:
        return await call.run(  # type: ignore[no-any-return]
            "read", pending.name,
            lambda _ctx: {"KeyMetadata": pending_metadata(pending, call.names)},
            permission="read")
    core = call.services.core

    def work(_ctx: RequestContext, key: Key) -> dict[str, Any]:
        if key.origin != "imported":
            return {"KeyMetadata": key_metadata(key, call.names)}
        with core.engine.connect() as conn:
            valid_to = expiry_of(conn, key.id)
            withdrawn = is_withdrawn(conn, key.id)
        meta = key_metadata(key, call.names, valid_to)
        # Material deleted (DeleteImportedKeyMaterial), or past its ValidTo before the
        # scheduler's sweep took it: as AWS shows both.
        if withdrawn or (valid_to is not None and core.clock.now() >= valid_to):
            meta.update(KeyState="PendingImport", Enabled=False)
        return {"KeyMetadata": meta}

    return await on_key(call, "read", "read", work)  # type: ignore[no-any-return]


@operation("ListKeys", "list")
async def list_keys(call: KmsCall) -> dict[str, Any]:
    limit = call.integer("Limit", 1, 1000, 100) or 100
    marker = call.text("Marker")
    core = call.services.core

    def work(ctx: RequestContext) -> dict[str, Any]:
        assert ctx.identity is not None
        found: list[dict[str, str]] = []
        after, more = marker, False
        with core.engine.connect() as conn:
            while len(found) < limit:
                batch = keys_repo.list_keys(conn, prefix=None, state=None, spec=None,
                                            owner=None, after=after, limit=limit)
                more = len(batch) == limit
                for key in batch:
                    after = key.name
                    if key.state is not KeyState.DESTROYED and core.authorizer.allowed(
                            ctx.identity, "list", key.name, client=ctx.client):
                        found.append({"KeyId": key.id, "KeyArn": call.names.key_arn(key.id)})
                    if len(found) >= limit:
                        break
                if not more:
                    break
            if marker is None:  # keys waiting for imported material: on the first page
                found += [{"KeyId": p.key_id, "KeyArn": call.names.key_arn(p.key_id)}
                          for p in all_pending(conn) if core.authorizer.allowed(
                              ctx.identity, "list", p.name, client=ctx.client)]
        answer: dict[str, Any] = {"Keys": found, "Truncated": bool(more and found)}
        if answer["Truncated"]:
            answer["NextMarker"] = after
        return answer

    result: dict[str, Any] = await call.run("list", None, work, permission=None)
    return result


@operation("UpdateKeyDescription", "update")
async def update_description(call: KmsCall) -> dict[str, Any]:
    changes = _changes({"description": call.text("Description", "")})
    lifecycle = call.services.lifecycle
    await on_key(call, "update", "update",
                 lambda ctx, key: lifecycle.update(ctx, key.name, changes))
    return {}


async def _toggle(call: KmsCall, enabled: bool) -> dict[str, Any]:
    operation_name = "enable" if enabled else "disable"
    wanted = KeyState.ENABLED if enabled else KeyState.DISABLED
    lifecycle = call.services.lifecycle

    def work(ctx: RequestContext, key: Key) -> None:
        if key.state is not wanted:  # AWS: enabling an enabled key is not an error
            lifecycle.set_enabled(ctx, key.name, enabled)

    await on_key(call, operation_name, operation_name, work)
    return {}


@operation("EnableKey", "enable")
async def enable_key(call: KmsCall) -> dict[str, Any]:
    return await _toggle(call, True)


@operation("DisableKey", "disable")
async def disable_key(call: KmsCall) -> dict[str, Any]:
    return await _toggle(call, False)


@operation("ScheduleKeyDeletion", "delete")
async def schedule_deletion(call: KmsCall) -> dict[str, Any]:
    days = call.integer("PendingWindowInDays", 7, 30, 30)
    core, lifecycle = call.services.core, call.services.lifecycle

    def work(ctx: RequestContext, key: Key) -> dict[str, Any]:
        with core.dual_control.guard(ctx, SCHEDULE_DELETION, key.name, {"days": days},
                                     approval_id=call.approval_id) as approved:
            done = lifecycle.schedule_deletion(ctx, key.name, days, facts=approved)
        return {"KeyId": call.names.key_arn(done.id), "DeletionDate": done.destroy_at,
                "KeyState": "PendingDeletion", "PendingWindowInDays": days}

    return await on_key(call, "delete", "delete", work)  # type: ignore[no-any-return]


@operation("CancelKeyDeletion", "delete")
async def cancel_deletion(call: KmsCall) -> dict[str, Any]:
    lifecycle = call.services.lifecycle

    def work(ctx: RequestContext, key: Key) -> dict[str, Any]:
        return {"KeyId": call.names.key_arn(lifecycle.cancel_deletion(ctx, key.name).id)}

    return await on_key(call, "delete", "delete", work)  # type: ignore[no-any-return]


# -- tags --------------------------------------------------------------------------------


@operation("TagResource", "update")
async def tag_resource(call: KmsCall) -> dict[str, Any]:
    added = _labels_from_tags(call.body.get("Tags") or [])
    lifecycle = call.services.lifecycle

    def work(ctx: RequestContext, key: Key) -> None:
        lifecycle.update(ctx, key.name, _changes({"labels": {**key.labels, **added}}))

    await on_key(call, "update", "update", work)
    return {}


@operation("UntagResource", "update")
async def untag_resource(call: KmsCall) -> dict[str, Any]:
    removed = call.body.get("TagKeys") or []
    lifecycle = call.services.lifecycle

    def work(ctx: RequestContext, key: Key) -> None:
        kept = {k: v for k, v in key.labels.items() if k not in removed}
        lifecycle.update(ctx, key.name, _changes({"labels": kept}))

    await on_key(call, "update", "update", work)
    return {}


@operation("ListResourceTags", "read")
async def list_resource_tags(call: KmsCall) -> dict[str, Any]:
    return await on_key(call, "read", "read",  # type: ignore[no-any-return]
                        lambda _ctx, key: {"Tags": tags_of(key), "Truncated": False})


# -- rotation ------------------------------------------------------------------------------


def _require_symmetric(key: Key, action: str) -> None:
    if get_spec(key.spec).family != "aead":
        raise unsupported(f"{action} applies to symmetric encryption keys only (as in AWS); "
                          "keyquorum's native API rotates any key: POST /v1/keys/{name}/rotate")
    if key.origin == "imported" and action != "GetKeyRotationStatus":
        raise unsupported(f"{action} does not apply to keys with imported material (as in "
                          "AWS): a rotation would make material keyquorum generated")


@operation("EnableKeyRotation", "update")
async def enable_rotation(call: KmsCall) -> dict[str, Any]:
    days = call.integer("RotationPeriodInDays", MIN_ROTATION_DAYS, MAX_ROTATION_DAYS,
                        DEFAULT_ROTATION_DAYS)
    assert days is not None
    changes = _changes({"rotation_period": days * 86400})
    lifecycle = call.services.lifecycle

    def work(ctx: RequestContext, key: Key) -> None:
        _require_symmetric(key, "EnableKeyRotation")
        lifecycle.update(ctx, key.name, changes)

    await on_key(call, "update", "update", work)
    return {}


@operation("DisableKeyRotation", "update")
async def disable_rotation(call: KmsCall) -> dict[str, Any]:
    lifecycle = call.services.lifecycle

    def work(ctx: RequestContext, key: Key) -> None:
        _require_symmetric(key, "DisableKeyRotation")
        lifecycle.update(ctx, key.name, _changes({"rotation_period": None}))

    await on_key(call, "update", "update", work)
    return {}


@operation("GetKeyRotationStatus", "read")
async def rotation_status(call: KmsCall) -> dict[str, Any]:
    def work(_ctx: RequestContext, key: Key) -> dict[str, Any]:
        _require_symmetric(key, "GetKeyRotationStatus")
        answer: dict[str, Any] = {"KeyRotationEnabled": key.rotation_period is not None,
                                  "KeyId": call.names.key_arn(key.id)}
        if key.rotation_period is not None:
            answer["RotationPeriodInDays"] = max(1, key.rotation_period // 86400)
            if key.next_rotation is not None:
                answer["NextRotationDate"] = key.next_rotation
        return answer

    return await on_key(call, "read", "read", work)  # type: ignore[no-any-return]


@operation("RotateKeyOnDemand", "rotate")
async def rotate_on_demand(call: KmsCall) -> dict[str, Any]:
    lifecycle = call.services.lifecycle

    def work(ctx: RequestContext, key: Key) -> dict[str, Any]:
        _require_symmetric(key, "RotateKeyOnDemand")
        return {"KeyId": lifecycle.rotate(ctx, key.name).id}

    return await on_key(call, "rotate", "rotate", work)  # type: ignore[no-any-return]


def _rotations_after(marker: str | None) -> int:
    """The version number a ListKeyRotations Marker stands for (ours: the last version
    answered, as decimal text); a marker we did not make is a ValidationException."""
    if marker is None:
        return 1
    if not marker.isdigit() or len(marker) > 18 or int(marker) < 2:
        raise KmsRequestError("Marker is not a marker this server answered (NextMarker)")
    return int(marker)


@operation("ListKeyRotations", "read")
async def list_rotations(call: KmsCall) -> dict[str, Any]:
    limit = call.integer("Limit", 1, 1000, 100) or 100
    after = _rotations_after(call.text("Marker"))

    def work(_ctx: RequestContext, key: Key) -> dict[str, Any]:
        _require_symmetric(key, "ListKeyRotations")
        kind = "AUTOMATIC" if key.rotation_period else "ON_DEMAND"
        versions = [version for version in sorted(key.versions, key=lambda v: v.version)
                    if version.version > after]
        page = versions[:limit]
        answer: dict[str, Any] = {
            "Rotations": [{"KeyId": key.id, "RotationDate": version.created_at,
                           "RotationType": kind} for version in page],
            "Truncated": len(versions) > limit}
        if answer["Truncated"]:
            answer["NextMarker"] = str(page[-1].version)
        return answer

    return await on_key(call, "read", "read", work)  # type: ignore[no-any-return]


__all__ = ["KmsNotFound", "on_key"]
