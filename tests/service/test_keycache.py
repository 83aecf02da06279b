"""The key cache never lets a stale read replace a fresher entry."""

from __future__ import annotations

from typing import Any

from keyquorum.keys.models import Key, KeyVersion
from keyquorum.keys.states import KeyState, VersionState
from keyquorum.service.keycache import KeyCache


def key_at(revision: int, primary: int) -> Key:
    versions = tuple(
        KeyVersion(key_id="id-1", version=n, created_at=0.0,
                   state=VersionState.ACTIVE if n == primary else VersionState.DEACTIVATED)
        for n in range(1, primary + 1))
    return Key(id="id-1", name="k", spec="aes-256-gcm", purpose="encrypt",
               state=KeyState.ENABLED, primary_version=primary, min_decrypt_version=1,
               origin="generated", exportable=False, deletion_window_days=30, created_at=0.0,
               updated_at=0.0, revision=revision, versions=versions)


def never_barrier() -> Any:
    raise AssertionError("not needed")


def test_a_reader_holding_an_older_revision_does_not_undo_a_rotation() -> None:
    cache = KeyCache(engine=None, barrier=never_barrier, reserve_block=16)  # type: ignore[arg-type]
    cache.refresh(key_at(revision=2, primary=2))  # the rotation's own refresh
    installed = cache.refresh(key_at(revision=1, primary=1))  # a slow reader's snapshot
    assert installed.key.primary_version == 2
    assert cache.get("k").key.revision == 2


def test_a_newer_revision_replaces_the_cached_one() -> None:
    cache = KeyCache(engine=None, barrier=never_barrier, reserve_block=16)  # type: ignore[arg-type]
    cache.refresh(key_at(revision=1, primary=1))
    cache.refresh(key_at(revision=2, primary=2))
    assert cache.get("k").key.primary_version == 2
