"""A keyquorum key as Vault's ``transit/keys/:name`` answer describes it.

Vault-only settings (``deletion_allowed``, ``min_encryption_version``) live in
the key's labels under ``vault-transit/``: they travel with the key through
backups and the native API (``GET /v1/keys/{name}`` shows them), and changing
them needs the native ``update`` permission, the twin of Vault's config call.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from keyquorum.keys.models import Key
from keyquorum.keys.specs import get_spec
from keyquorum.keys.states import KeyState, VersionState
from keyquorum.transit.types import capabilities, curve_name, hmac_bits, type_for_spec

DELETION_ALLOWED = "vault-transit/deletion-allowed"
MIN_ENCRYPTION_VERSION = "vault-transit/min-encryption-version"


def deletion_allowed(key: Key) -> bool:
    return key.labels.get(DELETION_ALLOWED) == "true"


def min_encryption_version(key: Key) -> int:
    value = key.labels.get(MIN_ENCRYPTION_VERSION, "0")
    return int(value) if value.isdigit() else 0


def _rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _versions(key: Key) -> dict[str, Any]:
    """``keys``: creation time per version (symmetric), or time, name and public key."""
    asymmetric = get_spec(key.spec).asymmetric
    shown: dict[str, Any] = {}
    for version in sorted(key.versions, key=lambda v: v.version):
        if version.state is VersionState.DESTROYED:
            continue
        if asymmetric:
            shown[str(version.version)] = {
                "creation_time": _rfc3339(version.created_at), "name": curve_name(key.spec),
                "public_key": version.public_key or "", "certificate_chain": ""}
        else:
            shown[str(version.version)] = int(version.created_at)
    return shown


def key_data(key: Key, vault_name: str) -> dict[str, Any]:
    """Vault's fields for a key, and keyquorum's state beside them (``kq_*``)."""
    data: dict[str, Any] = {
        "name": vault_name,
        "type": type_for_spec(key.spec),
        "keys": _versions(key),
        "latest_version": key.primary_version,
        "min_available_version": 0,
        "min_decryption_version": key.min_decrypt_version,
        "min_encryption_version": min_encryption_version(key),
        "deletion_allowed": deletion_allowed(key),
        "exportable": key.exportable,
        "allow_plaintext_backup": False,
        "auto_rotate_period": key.rotation_period or 0,
        "derived": False,
        "imported_key": key.origin != "generated",
        "soft_deleted": key.state in (KeyState.DESTROY_SCHEDULED, KeyState.DESTROYED),
        **capabilities(key.spec),
        "kq_spec": key.spec,
        "kq_state": key.state.value,
    }
    bits = hmac_bits(key.spec)
    if bits is not None:  # Vault shows an hmac key's size and not its versions
        data["key_size"] = bits // 8
        del data["keys"]
    return data
