"""Buffered nonces: unique across refills and threads, and never shared with a forked child."""

from __future__ import annotations

import os
import threading

from keyquorum.crypto.random import random_nonce


def test_nonces_are_unique_across_buffer_refills() -> None:
    nonces = [random_nonce(12) for _ in range(5000)]  # several 8 KiB refills
    assert len(set(nonces)) == len(nonces)
    assert all(len(n) == 12 for n in nonces)


def test_nonces_are_unique_across_threads() -> None:
    seen: list[bytes] = []
    lock = threading.Lock()

    def draw() -> None:
        mine = [random_nonce(24) for _ in range(1000)]
        with lock:
            seen.extend(mine)

    threads = [threading.Thread(target=draw) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 8000


def test_a_forked_child_never_reuses_the_parents_buffered_nonces() -> None:
    random_nonce(12)  # make sure the parent holds a partly used buffer
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report its next nonce, then leave at once
        os.close(read_end)
        os.write(write_end, random_nonce(12))
        os._exit(0)
    os.close(write_end)
    child_nonce = os.read(read_end, 12)
    os.close(read_end)
    os.waitpid(pid, 0)
    parent_nonce = random_nonce(12)
    assert len(child_nonce) == 12
    assert child_nonce != parent_nonce
