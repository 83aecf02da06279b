"""A key loaded while a change to it is heard of is not cached in its older form.

Nodes (and ``--workers`` siblings) skip reading a changed key they have not loaded;
the price is this race: a request loading that key from storage may read the row
just before the change commits, and must not then install the old revision after
the change was announced, or the node would keep using it.
"""

from __future__ import annotations

from typing import Any

import pytest

from keyquorum.service.context import system_context
from keyquorum.service.core import Core
from keyquorum.service.lifecycle import KeyLifecycle, NewKey
from keyquorum.storage import keys_repo


def test_a_load_that_read_before_a_change_was_heard_reads_again(
        core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    lifecycle = KeyLifecycle(core)
    key = lifecycle.create(system_context("t"), NewKey(name="race/k", spec="aes-256-gcm"))
    core.keys.clear()
    real = keys_repo.get_key
    reads: list[int] = []

    def read_then_hear_of_a_rotation(conn: Any, **lookup: Any) -> Any:
        row = real(conn, **lookup)
        reads.append(row.revision)
        if len(reads) == 1:  # the rotation commits, and is heard of, after this read
            lifecycle.rotate(system_context("t"), "race/k")
            core.keys.clear()  # as if another node rotated it: nothing of it cached here
            core.keys.note_change(key.id)
        return row

    monkeypatch.setattr(keys_repo, "get_key", read_then_hear_of_a_rotation)
    loaded = core.keys.get("race/k")

    assert reads[0] < reads[-1]  # the rotation's own reads come between
    assert loaded.key.primary_version == 2
    assert core.keys.cached("race/k") is loaded


def test_a_load_that_keeps_racing_is_answered_but_not_cached(
        core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    lifecycle = KeyLifecycle(core)
    key = lifecycle.create(system_context("t"), NewKey(name="race/busy", spec="aes-256-gcm"))
    core.keys.clear()
    real = keys_repo.get_key

    def always_racing(conn: Any, **lookup: Any) -> Any:
        row = real(conn, **lookup)
        core.keys.note_change(key.id)
        return row

    monkeypatch.setattr(keys_repo, "get_key", always_racing)
    loaded = core.keys.get("race/busy")

    assert loaded.key.id == key.id
    assert core.keys.cached("race/busy") is None  # the next use reads it again
