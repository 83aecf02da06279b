"""``transit/keys``: create, read, list, config, rotate, trim, delete (and export).

Each call runs the native lifecycle service under the native permission:
create → ``create`` (with the spec, for spec-conditioned rules), read → ``read``,
list → ``list`` per key, config → ``update``, rotate → ``rotate``, delete →
``delete`` under dual control's ``schedule-deletion``, exactly as
``POST /v1/keys/{name}/schedule-deletion``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from keyquorum.auth.dual_settings import DESTROY_VERSIONS, SCHEDULE_DELETION
from keyquorum.errors import Conflict, InvalidRequest, NotFound
from keyquorum.keys.models import Key
from keyquorum.keys.states import KeyState
from keyquorum.service.context import RequestContext
from keyquorum.service.lifecycle import (
    MAX_VERSION,
    KeyChanges,
    NewKey,
    destroy_versions_params,
)
from keyquorum.storage import keys_repo, transit_repo
from keyquorum.storage.transit_repo import DEFAULTS, TransitSettings
from keyquorum.transit import byok, fields
from keyquorum.transit.calls import Call
from keyquorum.transit.envelope import Answer, MethodNotAllowed, UnsupportedPath
from keyquorum.transit.keyinfo import key_data, min_available_version, settings_of
from keyquorum.transit.types import hmac_bits, spec_for_type, type_for_spec

MIN_ROTATION = 3600
_GONE = (KeyState.DESTROY_SCHEDULED, KeyState.DESTROYED)
NOT_HONOURED = ("derived", "convergent_encryption", "allow_plaintext_backup",
                "managed_key_name", "managed_key_id", "context")


def _load(call: Call, name: str) -> Key:
    call.services.core.barrier()
    with call.services.core.engine.connect() as conn:
        key = keys_repo.get_key(conn, name=name)
    if key is None:
        raise NotFound(f"no key named {name}")
    return key


async def handle_keys(call: Call) -> Answer:
    """Route ``keys``, ``keys/:name`` and ``keys/:name/<action>``."""
    segs = call.segments
    if len(segs) == 1:
        if call.method == "LIST":
            return await list_keys(call)
        raise MethodNotAllowed("keys answers LIST (or GET with list=true)")
    if len(segs) == 2:
        if call.method == "LIST":
            return await list_keys(call)
        handler = {"GET": read_key, "POST": create_key, "PUT": create_key,
                   "DELETE": delete_key}.get(call.method)
        if handler is None:
            raise MethodNotAllowed(f"{call.method} is not supported on keys/:name")
        return await handler(call)
    action = segs[2] if len(segs) == 3 else ""
    if call.method not in ("POST", "PUT"):
        raise MethodNotAllowed(f"keys/:name/{action} answers POST")
    if action == "config":
        return await configure(call)
    if action == "rotate":
        return await rotate(call)
    if action == "trim":
        return await trim(call)
    if action == "import":
        return await byok.import_key(call)
    if action == "import_version":
        return await byok.import_version(call)
    raise UnsupportedPath("unsupported path")


async def read_key(call: Call) -> Answer:
    name, vault_name = call.key_name(), call.segments[1]

    def work(_ctx: RequestContext) -> dict[str, Any]:
        key = _load(call, name)
        return key_data(key, vault_name, settings_of(call.services.core, key))

    return Answer(await call.run("read", name, work, permission="read"))


async def create_key(call: Call) -> Answer:
    name, vault_name, body = call.key_name(), call.segments[1], call.body
    fields.refuse_unsupported(body, NOT_HONOURED)
    vault_type = fields.text(body, "type", "aes256-gcm96") or "aes256-gcm96"
    spec = spec_for_type(vault_type)
    key_size = fields.integer(body, "key_size", None, low=0, high=4096)
    if key_size not in (None, 0) and key_size * 8 != (hmac_bits(spec) or -1):
        raise InvalidRequest("key_size is only for hmac keys, and keyquorum's hmac keys are "
                             "32 bytes (HMAC-SHA256)")
    rotation = _rotation(body)
    request = NewKey(name=name, spec=spec, exportable=fields.boolean(body, "exportable"),
                     rotation_period=rotation)

    def work(ctx: RequestContext) -> dict[str, Any]:
        try:
            key = call.services.lifecycle.create(ctx, request)
        except Conflict:  # Vault's create is idempotent: an existing key is answered as is
            key = _load(call, name)
            if key.spec != spec:
                raise Conflict(f"key {vault_name} exists with type "
                               f"{type_for_spec(key.spec)}") from None
            call.warnings.append("the key already exists; nothing was changed")
            return key_data(key, vault_name, settings_of(call.services.core, key))
        return key_data(key, vault_name, DEFAULTS)

    data = await call.run("create", name, work, permission="create", spec=spec)
    return Answer(data, call.warnings)


def _rotation(body: dict[str, Any]) -> int | None:
    seconds = fields.duration_seconds(body, "auto_rotate_period")
    if seconds is not None and 0 < seconds < MIN_ROTATION:
        raise InvalidRequest("auto_rotate_period must be 0 (off) or at least 1h")
    return seconds or None


async def list_keys(call: Call) -> Answer:
    assert call.mount is not None
    mount = call.mount
    core = call.services.core

    def work(ctx: RequestContext) -> list[str]:
        core.barrier()
        assert ctx.identity is not None
        found: list[str] = []
        with core.engine.connect() as conn:
            for key in keys_repo.iter_keys(conn, prefix=mount.prefix or None):
                if key.state in _GONE:  # deleted keys leave Vault's list at once
                    continue
                vault_name = mount.vault_name(key.name)
                if vault_name is not None and core.authorizer.allowed(
                        ctx.identity, "list", key.name, client=ctx.client):
                    found.append(vault_name)
        return found

    names = await call.run("list", None, work, permission=None)
    if not names:  # Vault answers an empty list with 404 and no message
        return Answer(status=404, raw={"errors": []})
    return Answer({"keys": names})


async def configure(call: Call) -> Answer:
    name, vault_name, body = call.key_name(), call.segments[1], call.body
    fields.refuse_unsupported(body, ("allow_plaintext_backup",))
    min_decrypt = fields.integer(body, "min_decryption_version", None, low=0)
    min_encrypt = fields.integer(body, "min_encryption_version", None, low=0)
    allowed = fields.boolean(body, "deletion_allowed") if "deletion_allowed" in body else None
    exportable = fields.boolean(body, "exportable") if "exportable" in body else None
    rotation_given = "auto_rotate_period" in body
    rotation = _rotation(body)

    def work(ctx: RequestContext) -> dict[str, Any]:
        key = _load(call, name)
        if exportable is not None and exportable != key.exportable:
            raise InvalidRequest("exportable is fixed when a key is created in keyquorum")
        if min_encrypt and min_encrypt > key.primary_version:
            raise InvalidRequest("min_encryption_version cannot exceed the latest version "
                                 f"({key.primary_version})")
        stored = settings_of(call.services.core, key)
        wanted = TransitSettings(
            deletion_allowed=stored.deletion_allowed if allowed is None else allowed,
            min_encryption_version=(stored.min_encryption_version if min_encrypt is None
                                    else min_encrypt))
        _check_minimums(key, min_decrypt or key.min_decrypt_version,
                        wanted.min_encryption_version)
        changes: dict[str, Any] = {}
        if min_decrypt:  # 0 keeps the current value, as in Vault
            changes["min_decrypt_version"] = min_decrypt
        if rotation_given:
            changes["rotation_period"] = rotation
        if not changes and wanted == stored:
            return key_data(key, vault_name, stored)

        def write_settings(conn: Connection, changed: Key, now: float) -> None:
            # In the update's transaction: the settings land with its audit record or not
            # at all, and the key's revision check covers them too.
            transit_repo.put_settings(conn, changed.id, wanted, now)

        key = call.services.lifecycle.update(
            ctx, name, KeyChanges(changes),
            also=write_settings if wanted != stored else None)
        return key_data(key, vault_name, wanted)

    return Answer(await call.run("update", name, work, permission="update"))


def _trim_refusal(key: Key, settings: TransitSettings, wanted: int) -> str | None:
    """Vault's rules for trim, in Vault's order and words (OpenBao's ``path_trim.go``)."""
    if wanted < min_available_version(key):
        return "minimum available version cannot be decremented"
    if settings.min_encryption_version == 0:
        return ("minimum available version cannot be set when minimum encryption version "
                "is not set")
    if wanted > settings.min_encryption_version:
        return "minimum available version cannot be greater than minmum encryption version"
    if wanted > key.min_decrypt_version:
        return "minimum available version cannot be greater than minimum decryption version"
    if wanted < 0:
        return "minimum available version cannot be negative"
    if wanted == 0:
        return "minimum available version should be positive"
    return None


async def trim(call: Call) -> Answer:
    """Vault's trim: the material of every version below ``min_available_version`` is
    destroyed (``KeyLifecycle.destroy_versions``, guarded like schedule-deletion)."""
    name, vault_name, body = call.key_name(), call.segments[1], call.body
    if "min_available_version" not in body:
        raise InvalidRequest("missing min_available_version")
    wanted = fields.integer(body, "min_available_version", None, low=-MAX_VERSION,
                            high=MAX_VERSION)
    assert wanted is not None
    approval_id = fields.text(body, "approval_id", max_length=64)
    core = call.services.core

    def work(ctx: RequestContext) -> dict[str, Any]:
        key = _load(call, name)
        settings = settings_of(core, key)
        refusal = _trim_refusal(key, settings, wanted)
        if refusal is not None:
            raise InvalidRequest(refusal)
        with core.dual_control.guard(ctx, DESTROY_VERSIONS, name,
                                     destroy_versions_params(wanted),
                                     approval_id=approval_id) as approved:
            key = call.services.lifecycle.destroy_versions(ctx, name, wanted, facts=approved)
        return key_data(key, vault_name, settings)

    return Answer(await call.run("delete", name, work, permission="delete"))


def _check_minimums(key: Key, decrypt: int, encrypt: int) -> None:
    """Vault's rules between the minimums, in Vault's words: decryption never below
    what a trim kept (those versions have no material), encryption (when set) never
    below decryption."""
    if decrypt < min_available_version(key):
        raise InvalidRequest("min decryption version should not be less then min available "
                             "version")
    if encrypt and encrypt < decrypt:
        raise InvalidRequest("cannot set min encryption/decryption values; min encryption "
                             f"version of {encrypt} must be greater than or equal to min "
                             f"decryption version of {decrypt}")


async def rotate(call: Call) -> Answer:
    name, vault_name = call.key_name(), call.segments[1]
    fields.refuse_unsupported(call.body, ("managed_key_name", "managed_key_id"))

    def work(ctx: RequestContext) -> dict[str, Any]:
        key = call.services.lifecycle.rotate(ctx, name)
        return key_data(key, vault_name, settings_of(call.services.core, key))

    return Answer(await call.run("rotate", name, work, permission="rotate"))


async def delete_key(call: Call) -> Answer:
    """Vault deletes at once; keyquorum schedules destruction after the key's deletion
    window (cancellable), and the answer's warnings say so."""
    name = call.key_name()
    approval_id = fields.text(call.body, "approval_id", max_length=64)
    core = call.services.core

    def work(ctx: RequestContext) -> int:
        key = _load(call, name)
        if not settings_of(core, key).deletion_allowed:
            raise InvalidRequest("deletion is not allowed for this key "
                                 "(set deletion_allowed=true with keys/:name/config)")
        with core.dual_control.guard(ctx, SCHEDULE_DELETION, name, {},
                                     approval_id=approval_id) as approved:
            scheduled = call.services.lifecycle.schedule_deletion(ctx, name, None,
                                                                  facts=approved)
        return scheduled.deletion_window_days

    days = await call.run("delete", name, work, permission="delete")
    return Answer(None, [
        f"keyquorum scheduled the key for destruction in {days} days (its deletion "
        "window), not at once; until then it can be restored with "
        f"POST /v1/keys/{name}/cancel-deletion"])
