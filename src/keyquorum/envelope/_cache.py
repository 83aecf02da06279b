"""A data-key cache: reuse one data key for several streams, within limits.

Off by default (pass a ``DataKeyCache`` to use it), as in the AWS Encryption
SDK: every stream normally gets its own data key, one server call each. When an
application writes many small streams, a cache trades that call for reuse under
three limits, whichever comes first: ``max_age`` seconds since the key was
made, ``max_messages`` streams, ``max_bytes`` plaintext bytes.

Reuse does not repeat nonces or segment keys: each stream derives its own
segment key from the data key and a fresh random salt. What reuse costs is
blast radius and audit granularity: one leaked data key opens every stream it
encrypted, and the server sees one ``datakey`` call for all of them. So:

- Entries are keyed by the key names (in order), the canonical context, and
  the client object: a stream never gets a key wrapped under other keys, bound
  to another context, or fetched with another caller's token.
- Counters are exact under threads: the check and the increment happen under
  one lock, and one thread per entry fetches a replacement while the others
  wait for it (no stampede of ``datakey`` calls, no use past a limit).
- ``max_bytes`` is counted before the stream is encrypted, from its size. A
  source whose size is unknown (a pipe) cannot be counted, so with
  ``max_bytes`` set it gets a fresh, uncached key.
- Expired and evicted entries are wiped (the key's ``bytearray`` is zeroed) by
  a janitor thread at their expiry, not only when next looked up. Python may
  keep other copies of the bytes (the HTTP answer, the derivation input); the
  cache zeroes the one it keeps.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ._keys import KeyService, NewDataKey, check_key_names, new_data_key
from .errors import EnvelopeUsageError

__all__ = ["CacheStats", "DataKeyCache"]


@dataclass(frozen=True)
class CacheStats:
    """What the cache has done; every field is exact."""

    hits: int
    misses: int
    bypassed: int
    fetched: int
    entries: int


class _Entry:
    __slots__ = ("bytes", "data_key", "expires", "messages", "service")

    def __init__(self, data_key: NewDataKey, service: KeyService, expires: float) -> None:
        self.data_key = data_key
        self.service = service
        self.expires = expires
        self.messages = 0
        self.bytes = 0


_CacheKey = tuple[tuple[str, ...], bytes]


class _FetchSlot:
    """The lock one entry's fetcher holds, and how many threads hold or wait for it."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0


class DataKeyCache:
    """Reuse data keys across streams within ``max_age`` / ``max_messages`` / ``max_bytes``.

    ``capacity`` bounds the number of (keys, context) entries; the least
    recently used is evicted and wiped. ``clock`` is injectable for tests.
    Use one cache per application; ``close()`` wipes everything.
    """

    def __init__(self, *, max_age: float, max_messages: int = 2**32,
                 max_bytes: int | None = None, capacity: int = 64,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not isinstance(max_age, int | float) or not max_age > 0:
            raise EnvelopeUsageError("max_age must be a positive number of seconds")
        if not isinstance(max_messages, int) or max_messages < 1:
            raise EnvelopeUsageError("max_messages must be a positive integer")
        if max_bytes is not None and (not isinstance(max_bytes, int) or max_bytes < 0):
            raise EnvelopeUsageError("max_bytes must be a non-negative integer or None")
        if not isinstance(capacity, int) or capacity < 1:
            raise EnvelopeUsageError("capacity must be a positive integer")
        self.max_age = float(max_age)
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.capacity = capacity
        self._clock = clock
        self._lock = threading.Condition()
        self._entries: OrderedDict[_CacheKey, _Entry] = OrderedDict()
        # Per entry: the lock its fetcher holds, and how many threads hold or wait for it.
        self._fetching: dict[_CacheKey, _FetchSlot] = {}
        self._counts = {"hits": 0, "misses": 0, "bypassed": 0, "fetched": 0}
        self._closed = False
        self._janitor: threading.Thread | None = None

    def __repr__(self) -> str:
        return (f"DataKeyCache(max_age={self.max_age}, max_messages={self.max_messages}, "
                f"max_bytes={self.max_bytes}, entries={len(self._entries)})")

    def __enter__(self) -> DataKeyCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(entries=len(self._entries), **self._counts)

    def acquire(self, service: KeyService, keys: Sequence[str],
                context: Mapping[str, str] | None, context_bytes: bytes,
                size: int | None) -> NewDataKey:
        """A data key for one stream of ``size`` plaintext bytes (``None``: unknown).

        The caller owns the returned copy and wipes it once the stream's key is
        derived; the cache keeps and later wipes its own.
        """
        names = check_key_names(keys)
        if self._closed:
            raise EnvelopeUsageError("this DataKeyCache is closed")
        if self.max_bytes is not None and (size is None or size > self.max_bytes):
            with self._lock:
                self._counts["bypassed"] += 1
            return new_data_key(service, names, context)
        cache_key = (names, context_bytes)
        with self._lock:
            taken = self._take(cache_key, service, size)
            if taken is not None:
                return taken
            slot = self._fetching.get(cache_key)
            if slot is None:
                slot = self._fetching[cache_key] = _FetchSlot()
            slot.users += 1
        try:
            with slot.lock:  # one fetch per entry; the others wait and then take from it
                with self._lock:
                    taken = self._take(cache_key, service, size)
                if taken is not None:
                    return taken
                fresh = new_data_key(service, names, context)
                with self._lock:
                    self._counts["misses"] += 1
                    self._counts["fetched"] += 1
                    entry = _Entry(fresh, service, self._clock() + self.max_age)
                    self._drop(cache_key)
                    self._entries[cache_key] = entry
                    while len(self._entries) > self.capacity:
                        self._drop(next(iter(self._entries)))
                    copy = self._use(cache_key, entry, size)
                    self._start_janitor()
                    self._lock.notify_all()
                    return copy
        finally:
            with self._lock:
                # Forgotten only once nobody holds or waits for it (contexts may be per
                # record: the table must not grow). Forgetting it while a thread still
                # waited let a newcomer make a second lock and fetch beside that thread,
                # and one of the two fresh keys was dropped half used (seen in CI).
                slot.users -= 1
                if slot.users == 0 and self._fetching.get(cache_key) is slot:
                    del self._fetching[cache_key]

    def purge(self) -> int:
        """Wipe every expired entry now; returns how many. The janitor calls this."""
        with self._lock:
            now = self._clock()
            expired = [k for k, e in self._entries.items() if e.expires <= now]
            for cache_key in expired:
                self._drop(cache_key)
            return len(expired)

    def clear(self) -> None:
        """Wipe every entry (the cache stays usable)."""
        with self._lock:
            for cache_key in list(self._entries):
                self._drop(cache_key)

    def close(self) -> None:
        """Wipe every entry and stop the janitor; the cache cannot be used afterwards."""
        with self._lock:
            self._closed = True
            self.clear()
            self._lock.notify_all()

    # --- under the lock ---------------------------------------------------------

    def _take(self, cache_key: _CacheKey, service: KeyService, size: int | None
              ) -> NewDataKey | None:
        entry = self._entries.get(cache_key)
        if entry is None:
            return None
        if entry.expires <= self._clock():
            self._drop(cache_key)
            return None
        if entry.service is not service:
            return None
        if self.max_bytes is not None and entry.bytes + (size or 0) > self.max_bytes:
            self._drop(cache_key)  # spent: a fresh key replaces it
            return None
        self._entries.move_to_end(cache_key)
        self._counts["hits"] += 1
        return self._use(cache_key, entry, size)

    def _use(self, cache_key: _CacheKey, entry: _Entry, size: int | None) -> NewDataKey:
        entry.messages += 1
        entry.bytes += size or 0
        copy = NewDataKey(bytes(entry.data_key.plaintext), entry.data_key.wrapped)
        if entry.messages >= self.max_messages or entry.bytes == self.max_bytes:
            self._drop(cache_key)  # used up: wipe now rather than at expiry
        return copy

    def _drop(self, cache_key: _CacheKey) -> None:
        entry = self._entries.pop(cache_key, None)
        if entry is not None:
            entry.data_key.wipe()

    def _start_janitor(self) -> None:
        if self._janitor is None or not self._janitor.is_alive():
            self._janitor = threading.Thread(target=_janitor, args=(weakref.ref(self),),
                                             name="keyquorum-datakey-cache", daemon=True)
            self._janitor.start()


def _janitor(ref: weakref.ref[DataKeyCache]) -> None:
    """Wipe entries as they expire; ends when the cache is closed, emptied or collected."""
    while True:
        cache = ref()
        if cache is None:
            return
        with cache._lock:
            cache.purge()
            if cache._closed or not cache._entries:
                cache._janitor = None
                return
            wait = min(e.expires for e in cache._entries.values()) - cache._clock()
            condition = cache._lock
            del cache  # do not keep the cache alive while sleeping
            condition.wait(timeout=max(wait, 0.01))
