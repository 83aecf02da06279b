"""Usage blocks: reserved ahead off the request path, disjoint across workers, given back.

A version's protect count is reserved in storage a block at a time. Once a quarter
of a block is left the next one is reserved ahead on a background thread, so a busy
key's requests do not queue at the block boundary (under load every request that
reached it went to a worker thread at once). Two processes sharing a store count in
disjoint blocks of the one stored count, and a clean seal gives back what is unused,
the block reserved ahead included.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from keyquorum.service import keycache
from keyquorum.service.context import system_context
from keyquorum.service.keycache import KeyCache
from keyquorum.service.lifecycle import KeyLifecycle, NewKey
from keyquorum.storage import keys_repo

pytestmark = pytest.mark.postgresql

BLOCK = 8


def _key(core: Any, name: str) -> None:
    KeyLifecycle(core).create(system_context("t"), NewKey(name=name, spec="aes-256-gcm"))


def _stored_reservation(core: Any, name: str) -> int:
    with core.engine.connect() as conn:
        key = keys_repo.get_key(conn, name=name)
    assert key is not None
    return key.versions[0].protect_reserved


def _wait_for_spare(cache: KeyCache, loaded: Any) -> None:
    deadline = time.monotonic() + 10
    while loaded.counters[1].spare is None:
        assert time.monotonic() < deadline, "the block reserved ahead never arrived"
        time.sleep(0.01)


def test_the_next_block_is_reserved_ahead_and_the_boundary_needs_no_storage_write(
        make_core: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keycache, "FAST_BLOCK_SECONDS", 0.0)  # every block the set size
    core = make_core(usage_reserve_block=BLOCK)
    _key(core, "blocks/k")
    cache, loaded = core.keys, core.keys.get("blocks/k")
    counts = []
    for _ in range(BLOCK - BLOCK // 4):
        counts.append(cache.count_protect(loaded, 1))
    assert cache.wants_spare(loaded, 1)
    cache.reserve_spare_soon(loaded, 1)
    _wait_for_spare(cache, loaded)
    assert not cache.wants_spare(loaded, 1)  # one block ahead at a time
    while loaded.counters[1].count < loaded.counters[1].ceiling:
        counts.append(cache.count_protect(loaded, 1))
    # At the boundary the spare is ready: the event loop counts on, no storage write
    # (None would say it had to hand the use to a thread).
    counts.append(cache.count_protect_on_loop(loaded, 1, None))
    assert counts == list(range(1, BLOCK + 2))
    assert _stored_reservation(core, "blocks/k") == 2 * BLOCK


def test_a_busy_version_takes_ever_larger_blocks_up_to_the_cap(make_core: Any) -> None:
    core = make_core(usage_reserve_block=BLOCK)
    _key(core, "blocks/busy")
    cache, loaded = core.keys, core.keys.get("blocks/busy")
    sizes = []
    for _ in range(400 * BLOCK):
        before = loaded.counters[1].ceiling if 1 in loaded.counters else 0
        cache.count_protect(loaded, 1)
        counter = loaded.counters[1]
        if counter.ceiling != before:
            sizes.append(counter.ceiling - max(before, counter.count - 1))
        if counter.count >= 400 * BLOCK:
            break
    assert sizes[0] == BLOCK and sizes[1] == 2 * BLOCK  # used within a second: doubled
    assert max(sizes) == keycache.MAX_BLOCK_FACTOR * BLOCK
    assert _stored_reservation(core, "blocks/busy") >= loaded.counters[1].count


def test_two_workers_count_in_disjoint_blocks_of_one_stored_count(make_core: Any) -> None:
    core = make_core(usage_reserve_block=BLOCK)
    _key(core, "blocks/shared")
    other = KeyCache(core.engine, core.barrier, BLOCK)  # a second worker on the same store
    mine, theirs = core.keys.get("blocks/shared"), other.get("blocks/shared")
    seen: list[int] = []
    for turn in range(5 * BLOCK):
        cache, loaded = (core.keys, mine) if turn % 3 else (other, theirs)
        seen.append(cache.count_protect(loaded, 1))
        if cache.wants_spare(loaded, 1):
            cache.reserve_spare_soon(loaded, 1)
            _wait_for_spare(cache, loaded)
    assert len(set(seen)) == len(seen), "two workers counted the same use"
    assert max(seen) <= _stored_reservation(core, "blocks/shared"), "a use went uncounted"


def test_a_clean_seal_gives_back_the_block_reserved_ahead(make_core: Any) -> None:
    core = make_core(usage_reserve_block=BLOCK)
    _key(core, "blocks/seal")
    cache, loaded = core.keys, core.keys.get("blocks/seal")
    for _ in range(BLOCK - 1):
        cache.count_protect(loaded, 1)
    cache.reserve_spare_soon(loaded, 1)
    _wait_for_spare(cache, loaded)
    core.seal()
    assert _stored_reservation(core, "blocks/seal") == BLOCK - 1  # exact again
