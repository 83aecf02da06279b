"""Shape domain values into the API's JSON answers (API.md field names)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from keyquorum import b64
from keyquorum.clock import rfc3339
from keyquorum.keys.models import Key
from keyquorum.service.keycache import KeyCache
from keyquorum.service.operations import (
    DataKey,
    Decapsulated,
    Decrypted,
    Encrypted,
    PublicKey,
    RandomData,
    Reencrypted,
    Signed,
    Tagged,
    Used,
    Verified,
)


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


def crypto_json(result: Used) -> dict[str, Any]:
    """The answer for one crypto item (API.md field names; bytes as standard base64)."""
    shape = _CRYPTO_SHAPES.get(type(result))
    if shape is None:
        raise TypeError(f"no answer shape for {type(result).__name__}")
    return shape(result)


_b64: Callable[[bytes], str] = b64.encode_standard  # (no wrapper call per item)


def _datakey(r: Any) -> dict[str, Any]:
    answer = {"ciphertext": r.ciphertext, "key_version": r.version}
    if r.plaintext is not None:
        answer["plaintext"] = _b64(r.plaintext)
    return answer


_CRYPTO_SHAPES: dict[type, Callable[[Any], dict[str, Any]]] = {
    Encrypted: lambda r: {"ciphertext": r.ciphertext, "key_version": r.version},
    Decrypted: lambda r: {"plaintext": _b64(r.plaintext), "key": r.key,
                          "key_version": r.version},
    Reencrypted: lambda r: {"ciphertext": r.ciphertext, "key_version": r.version,
                            "key": r.key},
    DataKey: _datakey,
    Signed: lambda r: {"signature": _b64(r.signature), "key_version": r.version},
    Verified: lambda r: {"valid": r.valid, "key_version": r.version},
    Tagged: lambda r: {"mac": _b64(r.tag), "key_version": r.version},
    Decapsulated: lambda r: {"shared_secret": _b64(r.shared_secret), "key_version": r.version},
    PublicKey: lambda r: {"public_key_pem": r.pem, "version": r.version, "spec": r.spec},
    RandomData: lambda r: {"random": _b64(r.data)},
}
