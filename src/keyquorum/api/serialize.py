"""Shape domain values into the API's JSON answers (API.md field names)."""

from __future__ import annotations

from typing import Any

from keyquorum.clock import rfc3339
from keyquorum.keys.models import Key
from keyquorum.service.keycache import KeyCache


def key_json(key: Key, cache: KeyCache) -> dict[str, Any]:
    last_used, per_version = cache.last_used(key)
    return {
        "id": key.id,
        "name": key.name,
        "spec": key.spec,
        "purpose": key.purpose,
        "state": key.state.value,
        "primary_version": key.primary_version,
        "min_decrypt_version": key.min_decrypt_version,
        "owner": key.owner,
        "description": key.description,
        "labels": key.labels,
        "origin": key.origin,
        "exportable": key.exportable,
        "rotation_period": key.rotation_period,
        "next_rotation": rfc3339(key.next_rotation),
        "crypto_period": key.crypto_period,
        "usage_limit": key.usage_limit,
        "deletion_window_days": key.deletion_window_days,
        "destroy_at": rfc3339(key.destroy_at),
        "created_at": rfc3339(key.created_at),
        "created_by": key.created_by,
        "updated_at": rfc3339(key.updated_at),
        "last_used_at": rfc3339(last_used),
        "versions": [
            {
                "version": v.version,
                "state": v.state.value,
                "state_reason": v.state_reason,
                "created_at": rfc3339(v.created_at),
                "destroyed_at": rfc3339(v.destroyed_at),
                "protect_count": cache.protect_count(key, v.version),
                "last_used_at": rfc3339(per_version.get(v.version)),
            }
            for v in key.versions
        ],
    }
