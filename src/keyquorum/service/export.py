"""Exporting the material of exportable keys.

DANGER: ``unsafe_export_material`` returns secret key material. It checks what
belongs to the key (created ``exportable``, the version exists and still has
material); the caller checks who may have it first: the ``export`` permission
and dual control's ``export`` action (the transit API's ``export`` path does
both, through the pipeline, before calling it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from keyquorum.errors import Conflict, KeyStateError, NotFound
from keyquorum.keys.models import Key
from keyquorum.keys.states import is_destroyed
from keyquorum.service.core import Core
from keyquorum.service.keycache import material_path
from keyquorum.storage import keys_repo


@dataclass(frozen=True)
class ExportedVersion:
    version: int
    material: bytes = field(repr=False)


def unsafe_export_material(core: Core, name: str, version: int | None
                           ) -> tuple[Key, list[ExportedVersion]]:
    """The key and the material of ``version`` (every version with material if None)."""
    core.barrier()
    key = core.keys.get(name).key
    if not key.exportable:
        raise Conflict(f"key {name} is not exportable (exportable is set when a key is "
                       "created)")
    if version is not None and key.version(version) is None:
        raise NotFound(f"key {name} has no version {version}")
    numbers = [version] if version is not None else sorted(v.version for v in key.versions)
    exported: list[ExportedVersion] = []
    with core.engine.connect() as conn:
        for number in numbers:
            stored = key.version(number)
            assert stored is not None
            blob = None if is_destroyed(stored.state) else \
                keys_repo.get_material(conn, key.id, number)
            if blob is None:
                if version is not None:
                    raise KeyStateError(f"version {number} has no key material (destroyed)")
                continue
            material = core.barrier().decrypt(material_path(key.id, number), blob)
            exported.append(ExportedVersion(number, material))
    return key, exported
