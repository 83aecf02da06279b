"""A keyquorum key as Vault's ``transit/keys/:name`` answer describes it.

Vault-only settings (``deletion_allowed``, ``min_encryption_version``) live in their
own table (``storage/transit_repo.py``), not in the key's labels: the native API
neither shows nor edits them, and only the transit config call (under the native
``update`` permission, in the update's audited transaction) changes them. A key
without a row answers Vault's defaults. ``min_available_version`` is read from the
versions: after a trim, the lowest version whose material is kept.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from keyquorum.keys.models import Key
from keyquorum.keys.specs import get_spec
from keyquorum.keys.states import KeyState, VersionState
from keyquorum.service.core import Core
from keyquorum.storage import transit_repo
from keyquorum.storage.transit_repo import TransitSettings
from keyquorum.transit.types import capabilities, curve_name, hmac_bits, type_for_spec


def settings_of(core: Core, key: Key) -> TransitSettings:
    """The key's transit settings as stored now (Vault's defaults without a row)."""
    with core.engine.connect() as conn:
        return transit_repo.get_settings(conn, key.id)


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


def min_available_version(key: Key) -> int:
    """Vault's ``min_available_version``: 0 until a version's material is destroyed (a
    trim), then the lowest version still kept."""
    kept = [v.version for v in key.versions if v.state is not VersionState.DESTROYED]
    if len(kept) == len(key.versions) or not kept:
        return 0
    return min(kept)


def key_data(key: Key, vault_name: str, settings: TransitSettings) -> dict[str, Any]:
    """Vault's fields for a key, and keyquorum's state beside them (``kq_*``)."""
    data: dict[str, Any] = {
        "name": vault_name,
        "type": type_for_spec(key.spec),
        "keys": _versions(key),
        "latest_version": key.primary_version,
        "min_available_version": min_available_version(key),
        "min_decryption_version": key.min_decrypt_version,
        "min_encryption_version": settings.min_encryption_version,
        "deletion_allowed": settings.deletion_allowed,
        "exportable": key.exportable,
        "allow_plaintext_backup": False,
        "auto_rotate_period": key.rotation_period or 0,
        "derived": False,
        "imported_key": key.origin != "generated",
        "soft_deleted": key.state in (KeyState.DESTROY_SCHEDULED, KeyState.DESTROYED),
        **capabilities(key.spec, key.purpose),
        "kq_spec": key.spec,
        "kq_state": key.state.value,
    }
    bits = hmac_bits(key.spec)
    if bits is not None:  # Vault shows an hmac key's size and not its versions
        data["key_size"] = bits // 8
        del data["keys"]
    return data
