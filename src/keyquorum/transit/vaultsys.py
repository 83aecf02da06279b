"""The two Vault system paths clients call besides the transit mount.

``auth/token/lookup-self`` (``bao token lookup``) describes the caller's token
from its Identity (never the token itself: ``id`` is left empty) and
``sys/mounts`` (``bao secrets list``) lists the transit mounts; ``sys/leader``
(asked by ``bao status``) says keyquorum is not an HA cluster. The seal paths
(``sys/seal-status``, ``init``, ``unseal``, ``seal``) are keyquorum's native
routes, which also speak Vault's field names.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from keyquorum.service.context import RequestContext
from keyquorum.transit.calls import Call
from keyquorum.transit.envelope import Answer, MethodNotAllowed
from keyquorum.transit.mounts import Mount

LOOKUP_SELF = "auth/token/lookup-self"
MOUNTS = "sys/mounts"
LEADER = "sys/leader"
PATHS = frozenset({LOOKUP_SELF, MOUNTS, LEADER})


def _rfc3339(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


async def answer(call: Call, mounts: dict[str, Mount]) -> Answer:
    if call.path == LOOKUP_SELF:
        if call.method not in ("GET", "POST", "PUT"):
            raise MethodNotAllowed("lookup-self answers GET")
        return await _lookup_self(call)
    if call.method != "GET":
        raise MethodNotAllowed(f"{call.path} answers GET")
    if call.path == LEADER:
        # Token-less in Vault too (``bao status`` asks it); nothing here is secret.
        return Answer(raw={"ha_enabled": False, "is_self": True, "active_time":
                           "0001-01-01T00:00:00Z", "leader_address": "",
                           "leader_cluster_address": "", "performance_standby": False,
                           "performance_standby_last_remote_wal": 0,
                           "raft_committed_index": 0, "raft_applied_index": 0})
    return await _mounts(call, mounts)


async def _lookup_self(call: Call) -> Answer:
    now = call.services.core.clock.now()

    def work(ctx: RequestContext) -> dict[str, Any]:
        identity = ctx.identity
        assert identity is not None
        ttl = max(0, int(identity.expires_at - now)) if identity.expires_at else 0
        return {"accessor": identity.accessor, "id": "", "display_name": identity.name or "",
                "policies": list(identity.policies), "creation_time": int(identity.created_at),
                "issue_time": _rfc3339(identity.created_at),
                "expire_time": _rfc3339(identity.expires_at), "ttl": ttl,
                "creation_ttl": ttl, "explicit_max_ttl": 0, "num_uses": 0, "orphan": True,
                "path": "auth/token/create", "renewable": False, "type": "service",
                "meta": None, "entity_id": ""}

    # A token may always describe itself (as in Vault); the record names who asked.
    return Answer(await call.run("token:lookup-self", None, work, permission=None,
                                 in_thread=False))


async def _mounts(call: Call, mounts: dict[str, Mount]) -> Answer:
    def work(_ctx: RequestContext) -> dict[str, Any]:
        return {f"{mount.path}/": _mount_entry(mount) for mount in mounts.values()}

    data = await call.run("sys:mounts", None, work, permission=None, in_thread=False)
    return Answer(data)


def _mount_entry(mount: Mount) -> dict[str, Any]:
    digest = hashlib.sha256(mount.path.encode()).hexdigest()
    return {"type": "transit", "description": (
                f"keyquorum keys{' under ' + mount.prefix if mount.prefix else ''}"),
            "accessor": f"transit_{digest[:8]}", "uuid": "", "local": False,
            "seal_wrap": False, "external_entropy_access": False, "options": None,
            "plugin_version": "", "running_plugin_version": "", "running_sha256": "",
            "deprecation_status": "",
            "config": {"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": False}}
