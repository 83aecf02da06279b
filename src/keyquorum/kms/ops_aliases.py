"""KMS aliases: CreateAlias, UpdateAlias, DeleteAlias, ListAliases.

An alias is a name for a key, so changing one needs ``update`` on the key it
names (both keys for UpdateAlias), and each change is written with its audit
record in one transaction. ``alias/<native name>`` belongs to the key of that
name: it is listed, cannot be created, moved or deleted (rename the key instead).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from keyquorum.keys.models import Key
from keyquorum.keys.states import KeyState
from keyquorum.kms.call import KmsCall
from keyquorum.kms.errors import KmsConflict, KmsNotFound, unsupported
from keyquorum.kms.ids import ALIAS_PREFIX, native_name_of_alias, resolve, validate_alias
from keyquorum.kms.ops_keys import on_key
from keyquorum.kms.registry import operation
from keyquorum.service.context import RequestContext
from keyquorum.storage import aliases_repo, keys_repo
from keyquorum.storage.aliases_repo import AliasRow


def _owned_by_a_key(call: KmsCall, alias: str) -> bool:
    native = native_name_of_alias(alias)
    if native is None:
        return False
    with call.services.core.engine.connect() as conn:
        return keys_repo.get_key(conn, name=native) is not None


@operation("CreateAlias", "update")
async def create_alias(call: KmsCall) -> dict[str, Any]:
    alias = validate_alias(call.body.get("AliasName"))
    core = call.services.core

    def work(ctx: RequestContext, key: Key) -> None:
        if _owned_by_a_key(call, alias):
            raise KmsConflict(f"An alias with the name {call.names.alias_arn(alias)} already "
                              "exists (it is the native name of a key)")
        now = core.clock.now()
        try:
            with core.changes.audited(ctx, "update", key=key.name,
                                      detail={"alias": alias}) as change:
                aliases_repo.insert_alias(change.conn, AliasRow(alias, key.id, now, now))
        except IntegrityError:
            raise KmsConflict(f"An alias with the name {call.names.alias_arn(alias)} "
                              "already exists") from None

    await on_key(call, "update", "update", work, field="TargetKeyId")
    return {}


@operation("UpdateAlias", "update")
async def update_alias(call: KmsCall) -> dict[str, Any]:
    alias = validate_alias(call.body.get("AliasName"))
    core = call.services.core

    def work(ctx: RequestContext, key: Key) -> None:
        with core.engine.connect() as conn:
            row = aliases_repo.get_alias(conn, alias)
            old = keys_repo.get_key(conn, key_id=row.key_id) if row else None
        if row is None or old is None:
            if _owned_by_a_key(call, alias):
                raise unsupported(f"{alias} is the native name of a key and always names it")
            raise KmsNotFound(f"Alias {call.names.alias_arn(alias)} is not found.")
        assert ctx.identity is not None
        core.authorizer.authorize(ctx.identity, "update", old.name, client=ctx.client)
        if old.spec != key.spec or old.purpose != key.purpose:
            raise KmsConflict("an alias moves only between keys of the same KeySpec and "
                              "KeyUsage", "ValidationException")
        with core.changes.audited(ctx, "update", key=key.name,
                                  detail={"alias": alias}) as change:
            aliases_repo.retarget_alias(change.conn, alias, key.id, core.clock.now())

    await on_key(call, "update", "update", work, field="TargetKeyId")
    return {}


@operation("DeleteAlias", "update")
async def delete_alias(call: KmsCall) -> dict[str, Any]:
    alias = validate_alias(call.body.get("AliasName"))
    core = call.services.core

    def find() -> str | None:
        with core.engine.connect() as conn:
            row = aliases_repo.get_alias(conn, alias)
            key = keys_repo.get_key(conn, key_id=row.key_id) if row else None
        return key.name if key else None

    name = find()
    if name is None and _owned_by_a_key(call, alias):
        raise unsupported(f"{alias} is the native name of a key and cannot be deleted")

    def work(ctx: RequestContext) -> dict[str, Any]:
        if name is None:
            raise KmsNotFound(f"Alias {call.names.alias_arn(alias)} is not found.")
        with core.changes.audited(ctx, "update", key=name, detail={"alias": alias}) as change:
            aliases_repo.delete_alias(change.conn, alias)
        return {}

    await call.run("update", name, work, permission="update" if name else None)
    return {}


@operation("ListAliases", "list")
async def list_aliases(call: KmsCall) -> dict[str, Any]:
    core = call.services.core
    wanted = call.body.get("KeyId")
    limit = call.integer("Limit", 1, 100, 50) or 50
    marker = call.text("Marker")

    def work(ctx: RequestContext) -> dict[str, Any]:
        assert ctx.identity is not None
        with core.engine.connect() as conn:
            only = resolve(conn, wanted, call.names).require(str(wanted)) if wanted else None
            rows = aliases_repo.list_aliases(conn, key_id=only.id if only else None)
            keys = [only] if only else keys_repo.list_keys(
                conn, prefix=None, state=None, spec=None, owner=None, after=None,
                limit=10_000)
            by_id = {key.id: key for key in keys}
            for row in rows:
                if row.key_id not in by_id:
                    found = keys_repo.get_key(conn, key_id=row.key_id)
                    if found is not None:
                        by_id[found.id] = found
        entries = [(row.name, by_id[row.key_id], row.created_at, row.updated_at)
                   for row in rows if row.key_id in by_id]
        entries += [(ALIAS_PREFIX + key.name, key, key.created_at, key.created_at)
                    for key in keys]
        aliases = [{"AliasName": name, "AliasArn": call.names.alias_arn(name),
                    "TargetKeyId": key.id, "CreationDate": created,
                    "LastUpdatedDate": updated}
                   for name, key, created, updated in sorted(entries, key=lambda e: e[0])
                   if (marker is None or name > marker)
                   and key.state is not KeyState.DESTROYED and core.authorizer.allowed(
                       ctx.identity, "list", key.name, client=ctx.client)]
        answer: dict[str, Any] = {"Aliases": aliases[:limit],
                                  "Truncated": len(aliases) > limit}
        if answer["Truncated"]:
            answer["NextMarker"] = aliases[limit - 1]["AliasName"]
        return answer

    result: dict[str, Any] = await call.run("list", None, work, permission=None)
    return result
