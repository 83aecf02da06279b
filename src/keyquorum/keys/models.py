"""Managed keys and their versions, as immutable values (no material here)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from keyquorum.keys.states import KeyState, VersionState


@dataclass(frozen=True)
class KeyVersion:
    key_id: str
    version: int
    state: VersionState
    created_at: float
    state_reason: str | None = None
    public_key: str | None = None
    activated_at: float | None = None
    deactivated_at: float | None = None
    destroyed_at: float | None = None
    protect_reserved: int = 0
    last_used_at: float | None = None


@dataclass(frozen=True)
class Key:
    id: str
    name: str
    spec: str
    purpose: str
    state: KeyState
    primary_version: int
    min_decrypt_version: int
    origin: str
    exportable: bool
    deletion_window_days: int
    created_at: float
    updated_at: float
    revision: int
    owner: str | None = None
    description: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    rotation_period: int | None = None
    next_rotation: float | None = None
    # Seconds a version may stay primary (NIST SP 800-57); None: the spec's default
    # (keys/cryptoperiods.py).
    crypto_period: int | None = None
    usage_limit: int | None = None
    destroy_at: float | None = None
    state_before_deletion: str | None = None
    created_by: str | None = None
    last_used_at: float | None = None
    versions: tuple[KeyVersion, ...] = ()

    def version(self, number: int) -> KeyVersion | None:
        for version in self.versions:
            if version.version == number:
                return version
        return None

    def evolve(self, **changes: Any) -> Key:
        return replace(self, **changes)
