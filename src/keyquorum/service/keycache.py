"""In-memory cache of key metadata, unwrapped key objects and usage counters.

The hot path (encrypt, decrypt, sign) must not touch storage per request, so
metadata and loaded key objects live here while unsealed. Every lifecycle
change replaces the cached entry from storage after its commit; sealing drops
everything.

Usage counters: each version's protect count is reserved in storage in blocks;
the live count runs in memory up to the reserved ceiling, then reserves the
next block. Once three quarters of a block are used, the next one is reserved
ahead, off the request path (``reserve_spare``), so a busy key's requests never
wait for that storage write on the event loop; with several workers each
process's blocks are disjoint ranges of the one stored count (a worker never
counts inside another's block). A clean seal or shutdown gives the unused part of every block back
(``release_unused``), so the stored count is exact again across seals and
restarts. After a crash the unused part is never given back: the count can only
over-count, never under-count, and the process stays counted as a holder of an
unreleased block, so reports can say the figure is an upper bound
(``counts_exact``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy import Engine

from keyquorum.errors import KeyStateError, NotFound
from keyquorum.keys.models import Key
from keyquorum.keys.specs import KeySpec, get_spec
from keyquorum.seal.barrier import Barrier
from keyquorum.storage import keys_repo
from keyquorum.storage.retry import retrying

log = logging.getLogger("keyquorum.keys")
_RESERVER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keyquorum-usage")
"""Reserves usage blocks ahead, off the request path (one storage write at a time)."""


_LOAD_ATTEMPTS = 3
_CHANGES_REMEMBERED = 4096
"""Key ids whose latest change is remembered for racing loads (``KeyCache.note_change``)."""

FAST_BLOCK_SECONDS = 1.0
MAX_BLOCK_FACTOR = 64
"""A busy version's blocks grow to at most 64 times ``usage_reserve_block`` (a crash may
then over-count by that much more; the count never under-counts)."""


def material_path(key_id: str, version: int) -> str:
    """The barrier AAD for a version's material: a blob moved to another row fails to open."""
    return f"keys/{key_id}/versions/{version}"


@dataclass
class UsageCounter:
    """This process's position in a version's protect count: it may count up to
    ``ceiling``, then go on in ``spare`` (a block reserved ahead) or reserve one."""

    count: int
    ceiling: int
    holding: bool = False  # this process holds an unreleased block of this version
    spare: tuple[int, int] | None = None  # (start, end] reserved ahead, not yet in use
    reserving_spare: bool = False
    block: int = 0  # the size of the next block (0: the configured size)
    block_started: float = 0.0  # when the block in use was taken (monotonic)
    # Its own lock: a refreshed LoadedKey shares this counter with the entry it replaced.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take_block(self, end: int, block: int) -> None:
        """Count in the block ``(end - block, end]`` just reserved (another process may
        have reserved the ones between: never count inside them)."""
        self.count = max(self.count, end - block)
        self.ceiling = end
        self.block_started = time.monotonic()

    def take_spare(self) -> None:
        """Count on in the block reserved ahead (``spare`` must be set)."""
        assert self.spare is not None
        start, end = self.spare
        self.spare = None
        self.take_block(end, end - start)

    def runs_low(self, configured: int) -> bool:
        """Whether the next block should be reserved ahead now (half of this one left)."""
        return (self.holding and self.spare is None and not self.reserving_spare
                and self.ceiling - self.count <= (self.block or configured) // 2)

    def next_block(self, configured: int) -> int:
        """The size of the next block: doubled (up to ``MAX_BLOCK_FACTOR`` times the
        configured size) while a block lasts under ``FAST_BLOCK_SECONDS``, so a busy key
        reserves a few times a second, not hundreds, and its requests do not meet a
        storage write; back to the configured size once it is quiet."""
        current = self.block or configured
        fast = self.block_started and time.monotonic() - self.block_started < FAST_BLOCK_SECONDS
        self.block = min(current * 2, configured * MAX_BLOCK_FACTOR) if fast else configured
        return self.block


@dataclass
class LoadedKey:
    key: Key
    handles: dict[int, Any] = field(default_factory=dict, repr=False)
    counters: dict[int, UsageCounter] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # Last use per version, kept in memory on the hot path and flushed by the scheduler.
    used_at: dict[int, float] = field(default_factory=dict)

    @cached_property
    def spec(self) -> KeySpec:
        """The key's spec, looked up once per loaded revision (asked per item)."""
        return get_spec(self.key.spec)


class KeyCache:
    def __init__(self, engine: Engine, barrier: Callable[[], Barrier], reserve_block: int) -> None:
        self._engine = engine
        self._barrier = barrier
        self._reserve_block = reserve_block
        self._by_name: dict[str, LoadedKey] = {}
        self._name_by_id: dict[str, str] = {}
        self._lock = threading.Lock()
        # Changes heard of (``note_change``), so a load that read the row before one was
        # noted does not install its older snapshot (see ``_install``).
        self._changes = 0
        self._changed_at: dict[str, int] = {}
        self._changes_floor = 0
        self.use_check: Callable[[Key], None] | None = None
        """Run before any version's material is used; raises to refuse the use.
        ``build_services`` sets it to refuse imported material past its ValidTo
        (``kms.expiry``), so native and KMS calls alike never use expired material."""

    def clear(self) -> None:
        """Drop every cached key object (on seal). Python cannot zero immutable bytes; dropping
        the last references lets the memory be reused."""
        with self._lock:
            self._by_name.clear()
            self._name_by_id.clear()

    def cached(self, name: str) -> LoadedKey | None:
        """The cached entry for ``name`` without touching storage (None on a miss)."""
        return self._by_name.get(name)

    def revisions(self) -> dict[str, int]:
        """Key id → the revision cached here, for every cached key (other nodes' changes
        are found by comparing these with the store: ``runtime.change_feed``)."""
        with self._lock:
            return {loaded.key.id: loaded.key.revision for loaded in self._by_name.values()}

    def cached_by_id(self, key_id: str) -> LoadedKey | None:
        name = self._name_by_id.get(key_id)
        return self._by_name.get(name) if name is not None else None

    def wants_spare(self, loaded: LoadedKey, version: int) -> bool:
        """Whether the next block should be reserved ahead now (``UsageCounter.runs_low``)."""
        counter = loaded.counters.get(version)
        return counter is not None and counter.runs_low(self._reserve_block)

    def reserve_spare_soon(self, loaded: LoadedKey, version: int) -> None:
        """Reserve the next block ahead on a background thread; the caller goes on at once.

        One reservation at a time per version; if it fails (storage busy or full) nothing
        is lost: the protect that exhausts the block reserves one itself, as before.
        """
        counter = loaded.counters.get(version)
        if counter is None:
            return
        with counter.lock:
            if counter.spare is not None or counter.reserving_spare:
                return
            counter.reserving_spare = True
            block = counter.next_block(self._reserve_block)
        _RESERVER.submit(self._fill_spare, loaded.key.id, version, counter, block)

    def _fill_spare(self, key_id: str, version: int, counter: UsageCounter,
                    block: int) -> None:
        try:
            with self._engine.begin() as conn:
                end = keys_repo.reserve_protects(conn, key_id, version, block)
            with counter.lock:
                if counter.holding:
                    counter.spare = (end - block, end)
                else:  # released meanwhile (a seal): give the block straight back
                    with self._engine.begin() as conn:
                        keys_repo.release_protects(conn, key_id, version, block)
        except Exception as exc:
            log.warning("reserving usage counts ahead failed (%s)", type(exc).__name__)
        finally:
            counter.reserving_spare = False

    def get(self, name: str) -> LoadedKey:
        loaded = self._by_name.get(name)
        if loaded is not None:
            return loaded
        return self._load(f"no key named {name}", name=name)

    def get_by_id(self, key_id: str) -> LoadedKey:
        name = self._name_by_id.get(key_id)
        if name is not None and name in self._by_name:
            return self._by_name[name]
        return self._load("the ciphertext names a key that does not exist here", key_id=key_id)

    def _load(self, missing: str, **lookup: str) -> LoadedKey:
        """Read a key and cache it; read again if a change to it was heard of meanwhile
        (``note_change``), so an older snapshot is not cached over the news."""
        for attempt in range(_LOAD_ATTEMPTS):
            started = self._changes
            with self._engine.connect() as conn:
                key = keys_repo.get_key(conn, **lookup)
            if key is None:
                raise NotFound(missing)
            loaded = self._install(key, read_from=started)
            if loaded is not None:
                return loaded
            if attempt == _LOAD_ATTEMPTS - 1:
                # Changes keep arriving: answer with the newest read, but leave nothing
                # cached, so the next use reads the key again (a usage block reserved
                # through this entry is then never handed back: counts only go up).
                return LoadedKey(key=key)
        raise AssertionError("unreachable")


    def refresh(self, key: Key) -> LoadedKey:
        """Install fresh metadata after a change, keeping loaded objects of live versions."""
        loaded = self._install(key)
        assert loaded is not None
        return loaded

    def note_change(self, key_id: str) -> None:
        """Another process changed ``key_id``: a load of it that read the row before now
        must not be cached (it may hold the old revision). Called before that change is
        read here, or instead of reading it when the key is not cached here at all."""
        with self._lock:
            self._changes += 1
            self._changed_at[key_id] = self._changes
            if len(self._changed_at) > _CHANGES_REMEMBERED:
                # Forget them all at once: every load begun before this point is then
                # treated as possibly stale, once.
                self._changed_at.clear()
                self._changes_floor = self._changes

    def _install(self, key: Key, *, read_from: int | None = None) -> LoadedKey | None:
        """Cache ``key``; None (nothing cached) when it was read from storage (at change
        count ``read_from``) and a change to it was noted since. Checked under the lock
        that ``note_change`` takes, so a change noted after this is installed finds the
        key cached and is read again by whoever noted it."""
        with self._lock:
            if read_from is not None and (read_from < self._changes_floor
                                          or self._changed_at.get(key.id, 0) > read_from):
                return None
            old = self._by_name.get(key.name)
            if old is not None and old.key.id == key.id and old.key.revision > key.revision:
                # A reader that loaded the row before a concurrent change committed must not
                # put its older snapshot over the fresher entry that change installed.
                return old
            fresh = LoadedKey(key=key)
            if old is not None:
                for version in key.versions:
                    if version.destroyed_at is None and version.version in old.handles:
                        fresh.handles[version.version] = old.handles[version.version]
                for number, counter in old.counters.items():
                    fresh.counters[number] = counter
                fresh.used_at.update(old.used_at)
            self._by_name[key.name] = fresh
            self._name_by_id[key.id] = key.name
            return fresh

    def handle(self, loaded: LoadedKey, version: int) -> Any:
        """The usable key object for ``version``, unwrapped through the barrier on first use."""
        if self.use_check is not None:
            self.use_check(loaded.key)
        handle = loaded.handles.get(version)
        if handle is not None:
            return handle
        with self._engine.connect() as conn:
            blob = keys_repo.get_material(conn, loaded.key.id, version)
        if blob is None:
            raise KeyStateError(f"version {version} has no key material (destroyed)")
        material = self._barrier().decrypt(material_path(loaded.key.id, version), blob)
        handle = get_spec(loaded.key.spec).load(material, loaded.key.purpose)
        loaded.handles[version] = handle
        return handle

    def count_protect(self, loaded: LoadedKey, version: int) -> int:
        """Count one protect operation; reserve the next block in storage when needed."""
        with loaded.lock:
            counter = loaded.counters.get(version)
            if counter is None:
                stored = loaded.key.version(version)
                reserved = stored.protect_reserved if stored else 0
                counter = loaded.counters[version] = UsageCounter(reserved, reserved)
        with counter.lock:
            if counter.count >= counter.ceiling and counter.spare is not None:
                counter.take_spare()
            if counter.count >= counter.ceiling:
                block = counter.next_block(self._reserve_block)
                holding = counter.holding

                def reserve() -> int:
                    with self._engine.begin() as conn:
                        end = keys_repo.reserve_protects(conn, loaded.key.id, version, block)
                        if not holding:
                            keys_repo.adjust_reservation_holders(conn, loaded.key.id, version,
                                                                 +1, time.time())
                    return end

                end = retrying(reserve)
                counter.take_block(end, block)
                counter.holding = True
            counter.count += 1
            return counter.count

    def release_unused(self) -> None:
        """Give back every unused reserved count (before a seal or a clean shutdown).

        The last-use times kept in memory are written too (the scheduler writes them
        every interval): a seal or restart soon after a use would otherwise lose it.
        """
        pending = self.pending_use()
        if pending:
            with self._engine.begin() as conn:
                for key_id, per_version in pending:
                    keys_repo.record_last_used(conn, key_id, per_version)
        with self._lock:
            loaded_keys = list(self._by_name.values())
        for loaded in loaded_keys:
            with loaded.lock:
                counters = list(loaded.counters.items())
            for version, counter in counters:
                with counter.lock:
                    if not counter.holding:
                        continue
                    spare = counter.spare[1] - counter.spare[0] if counter.spare else 0
                    with self._engine.begin() as conn:
                        keys_repo.release_protects(conn, loaded.key.id, version,
                                                   counter.ceiling - counter.count + spare)
                        keys_repo.adjust_reservation_holders(conn, loaded.key.id, version, -1,
                                                             time.time())
                    counter.ceiling = counter.count
                    counter.spare = None
                    counter.holding = False

    def counts_exact(self, key: Key, held: dict[tuple[str, int], int]) -> dict[int, bool]:
        """Per version: is its protect count exact, or an upper bound?

        ``held`` is ``keys_repo.reservation_holders``. Exact when no process but this
        one holds an unreleased block (this one's live count is exact); another
        worker's block, or one a crash never gave back, makes it an upper bound.
        """
        loaded = self._by_name.get(key.name)
        exact = {}
        for v in key.versions:
            mine = bool(loaded and v.version in loaded.counters
                        and loaded.counters[v.version].holding)
            exact[v.version] = held.get((key.id, v.version), 0) - int(mine) <= 0
        return exact

    def count_protect_on_loop(self, loaded: LoadedKey, version: int,
                              limit: int | None) -> int | None:
        """``count_protect`` for the event loop, in one call: the count after this use,
        or None, with nothing counted, when counting needs storage (no block held, or
        this one spent with none reserved ahead) or this use would reach ``limit`` (a
        rotation follows it). Asks for the next block ahead when this one runs low."""
        counter = loaded.counters.get(version)
        if counter is None:
            return None
        with counter.lock:
            if limit is not None and counter.count + 1 >= limit:
                return None
            if counter.count >= counter.ceiling:
                if counter.spare is None:
                    return None
                counter.take_spare()
                if limit is not None and counter.count + 1 >= limit:
                    return None
            counter.count += 1
            count = counter.count
            low = counter.runs_low(self._reserve_block)
        if low:
            self.reserve_spare_soon(loaded, version)
        return count

    def protect_count(self, key: Key, version: int) -> int:
        loaded = self._by_name.get(key.name)
        if loaded is not None and version in loaded.counters:
            return loaded.counters[version].count
        stored = key.version(version)
        return stored.protect_reserved if stored else 0

    def mark_used(self, loaded: LoadedKey, version: int, now: float) -> None:
        loaded.used_at[version] = now

    def last_used(self, key: Key) -> tuple[float | None, dict[int, float]]:
        loaded = self._by_name.get(key.name)
        per_version = {v.version: v.last_used_at for v in key.versions if v.last_used_at}
        if loaded is not None:
            per_version.update(loaded.used_at)
        overall = max(per_version.values(), default=key.last_used_at)
        return overall, per_version  # type: ignore[return-value]

    def pending_use(self) -> list[tuple[str, dict[int, float]]]:
        """Key ids with in-memory last-use times, for the scheduler to flush to storage;
        in id order, the lock order of ``keys_repo.lock_key``."""
        with self._lock:
            return sorted(((loaded.key.id, dict(loaded.used_at))
                           for loaded in self._by_name.values() if loaded.used_at),
                          key=lambda pending: pending[0])
