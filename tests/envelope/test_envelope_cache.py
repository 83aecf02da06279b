"""The data-key cache: off by default, limits exact (also under threads), wiped on expiry."""

from __future__ import annotations

import io
import threading
import time
from collections import Counter

import pytest

from envelope.envelope_fakes import FakeKeyService
from keyquorum.envelope import (
    DataKeyCache,
    EnvelopeUsageError,
    decrypt_stream,
    encrypt_stream,
    read_header,
)

CONTEXT = {"tenant": "acme"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Pipe(io.BytesIO):
    """A source whose size cannot be known in advance."""

    def seekable(self) -> bool:
        return False

    def fileno(self) -> int:
        raise OSError("not a file")


def encrypt(keys: FakeKeyService, cache: DataKeyCache | None, data: bytes = b"x" * 100, *,
            context: dict[str, str] | None = None, names: tuple[str, ...] = ("app/primary",),
            source: io.BytesIO | None = None) -> str:
    """Encrypt; returns the wrapped data key in the header (identifies the data key)."""
    out = io.BytesIO()
    encrypt_stream(source or io.BytesIO(data), out, keys=list(names),
                   context=CONTEXT if context is None else context, client=keys, cache=cache,
                   segment_size=64)
    decrypt_stream(io.BytesIO(out.getvalue()), io.BytesIO(),
                   context=CONTEXT if context is None else context, client=keys)
    return read_header(io.BytesIO(out.getvalue())).wrapped_keys[0].ciphertext


def test_without_a_cache_every_stream_gets_its_own_data_key(keys) -> None:
    wrapped = {encrypt(keys, None) for _ in range(5)}
    assert len(wrapped) == 5 and keys.calls["datakey"] == 5


def test_max_messages(keys) -> None:
    with DataKeyCache(max_age=60, max_messages=3) as cache:
        used = [encrypt(keys, cache) for _ in range(7)]
        assert [used.count(w) for w in dict.fromkeys(used)] == [3, 3, 1]
        assert keys.calls["datakey"] == 3
        stats = cache.stats()
    assert (stats.hits, stats.misses, stats.fetched, stats.entries) == (4, 3, 3, 1)


def test_max_bytes_counts_sizes_known_in_advance(keys) -> None:
    with DataKeyCache(max_age=60, max_bytes=250) as cache:
        sizes = [100, 100, 50, 1, 300, 100]
        used = [encrypt(keys, cache, b"y" * n) for n in sizes]
        # 100+100+50 = 250 fills the first key exactly; 1 needs a new one; 300 is over the
        # limit for any key, so it bypasses the cache; 100 shares the second key.
        assert used[0] == used[1] == used[2]
        assert used[3] == used[5] != used[0]
        assert used[4] not in (used[0], used[3])
        assert cache.stats().bypassed == 1


def test_a_pipe_of_unknown_size_bypasses_a_byte_limited_cache(keys) -> None:
    with DataKeyCache(max_age=60, max_bytes=10**9) as cache:
        first = encrypt(keys, cache, source=Pipe(b"z" * 10))
        second = encrypt(keys, cache, source=Pipe(b"z" * 10))
        assert first != second and cache.stats().bypassed == 2
    with DataKeyCache(max_age=60) as unlimited:  # no byte limit: nothing to count
        assert encrypt(keys, unlimited, source=Pipe(b"z")) == encrypt(
            keys, unlimited, source=Pipe(b"z"))


def test_max_age_with_an_injected_clock(keys) -> None:
    clock = FakeClock()
    with DataKeyCache(max_age=30, clock=clock) as cache:
        first = encrypt(keys, cache)
        clock.now += 29.9
        assert encrypt(keys, cache) == first
        clock.now += 0.2
        assert encrypt(keys, cache) != first


def test_entries_are_keyed_by_keys_context_and_client(keys) -> None:
    other_client = FakeKeyService()
    other_client.keys = keys.keys  # the same key material, but another caller
    with DataKeyCache(max_age=60) as cache:
        base = encrypt(keys, cache)
        assert encrypt(keys, cache) == base
        assert encrypt(keys, cache, context={"tenant": "other"}) != base
        assert encrypt(keys, cache, names=("app/primary", "app/dr")) != base
        assert encrypt(keys, cache, names=("app/dr",)) != base
        assert encrypt(other_client, cache) != base
        assert cache.stats().entries == 4  # the other client's entry replaced the first


def test_counters_are_exact_under_threads(keys) -> None:
    threads, per_thread, limit = 8, 25, 7
    used: list[str] = []
    lock = threading.Lock()
    with DataKeyCache(max_age=60, max_messages=limit) as cache:

        def work() -> None:
            for _ in range(per_thread):
                wrapped = encrypt(keys, cache)
                with lock:
                    used.append(wrapped)

        workers = [threading.Thread(target=work) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        stats = cache.stats()
    counts = Counter(used)
    total = threads * per_thread
    assert max(counts.values()) <= limit
    assert sum(counts.values()) == total
    # One fetch per exhausted key, never two threads fetching at once for one entry.
    assert keys.calls["datakey"] == len(counts) == -(-total // limit)
    assert stats.hits + stats.misses == total and stats.fetched == len(counts)


def test_expired_keys_are_wiped_by_the_janitor_without_another_call(keys) -> None:
    cache = DataKeyCache(max_age=0.2)
    encrypt(keys, cache)
    entry = next(iter(cache._entries.values()))
    secret = entry.data_key.plaintext
    assert any(secret)
    time.sleep(0.6)
    assert cache.stats().entries == 0
    assert secret == bytearray(len(secret))  # zeroed in place
    cache.close()


def test_close_wipes_and_refuses_further_use(keys) -> None:
    cache = DataKeyCache(max_age=60)
    encrypt(keys, cache)
    secret = next(iter(cache._entries.values())).data_key.plaintext
    cache.close()
    assert secret == bytearray(len(secret))
    with pytest.raises(EnvelopeUsageError, match="closed"):
        encrypt(keys, cache)


@pytest.mark.parametrize(("options", "rule"), [
    ({"max_age": 0}, "max_age"), ({"max_age": 1, "max_messages": 0}, "max_messages"),
    ({"max_age": 1, "max_bytes": -1}, "max_bytes"), ({"max_age": 1, "capacity": 0}, "capacity")])
def test_bad_limits_are_caller_mistakes(options, rule: str) -> None:
    with pytest.raises(EnvelopeUsageError, match=rule):
        DataKeyCache(**options)


def test_the_repr_shows_limits_not_keys(keys) -> None:
    with DataKeyCache(max_age=60) as cache:
        encrypt(keys, cache)
        text = repr(cache) + repr(next(iter(cache._entries.values())).data_key)
    assert "max_age=60.0" in text and "app/primary" in text
    assert "bytearray" not in text
