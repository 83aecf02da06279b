"""The one source of randomness for keys, nonces and scalars: the OS CSPRNG.

Nothing in keyquorum seeds its own generator; ``os.urandom`` is ``getrandom(2)``
on Linux and never returns predictable bytes after boot.
"""

from __future__ import annotations

import os
import threading

from keyquorum.crypto.wipe import unsafe_wipe_bytes

__all__ = ["random_buffer", "random_bytes", "random_nonce"]


def random_bytes(n: int) -> bytes:
    """Return ``n`` bytes from the operating system's CSPRNG."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError("n must be a non-negative integer")
    return os.urandom(n)


def random_buffer(n: int) -> bytearray:
    """``n`` bytes from the OS CSPRNG in a ``bytearray``, for a secret that is wiped later.

    ``os.urandom`` can only answer ``bytes``; that object is overwritten once copied, so
    the secret exists only in the buffer returned (``crypto.wipe``).
    """
    fresh = random_bytes(n)
    buffer = bytearray(fresh)
    unsafe_wipe_bytes(fresh)
    return buffer


class _NonceBuffer:
    """Public nonces sliced from one larger ``os.urandom`` read.

    Nonces are not secret, only unique; reading them 12 bytes at a time costs a
    system call per encryption, and under load each call gives up the GIL and
    waits to win it back. The bytes still come from the OS CSPRNG. A forked
    child drops the parent's buffer (``register_at_fork``), so two processes can
    never hand out the same bytes.
    """

    _SIZE = 8192

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._offset = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._offset = 0

    def take(self, n: int) -> bytes:
        if n > 256:
            return os.urandom(n)
        with self._lock:
            end = self._offset + n
            if end > len(self._buffer):
                self._buffer = os.urandom(self._SIZE)
                self._offset, end = 0, n
            chunk = self._buffer[self._offset : end]
            self._offset = end
            return chunk


_NONCES = _NonceBuffer()


def random_nonce(n: int) -> bytes:
    """``n`` fresh random bytes for a public nonce (never for keys: use ``random_bytes``)."""
    return _NONCES.take(n)
