"""A key is read as of one revision, though its row and its versions are two statements.

Outside a write transaction neither SQLite nor PostgreSQL (READ COMMITTED) reads the
two from one snapshot. A rotation committed between them gave a key whose row still
named version 1 primary while its versions already said version 1 was deactivated:
an encrypt with that key answered 409 (seen once in CI, on two workers rotating and
encrypting one key).
"""

from __future__ import annotations

from typing import Any

import pytest

from keyquorum.keys.states import VersionState
from keyquorum.service.context import system_context
from keyquorum.service.core import Core
from keyquorum.service.lifecycle import KeyLifecycle, NewKey
from keyquorum.storage import keys_repo


def test_a_rotation_committed_between_the_row_and_its_versions_is_read_whole(
        core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    lifecycle = KeyLifecycle(core)
    lifecycle.create(system_context("t"), NewKey(name="torn/k", spec="aes-256-gcm"))
    real = keys_repo._versions_of
    rotated: list[bool] = []

    def rotate_in_between(conn: Any, key_id: str) -> Any:
        if not rotated:  # another process commits a rotation right after the row was read
            rotated.append(True)
            lifecycle.rotate(system_context("t"), "torn/k")
        return real(conn, key_id)

    monkeypatch.setattr(keys_repo, "_versions_of", rotate_in_between)
    with core.engine.connect() as conn:
        key = keys_repo.get_key(conn, name="torn/k")

    assert rotated and key is not None
    primary = key.version(key.primary_version)
    assert key.primary_version == 2
    assert primary is not None and primary.state is VersionState.ACTIVE
