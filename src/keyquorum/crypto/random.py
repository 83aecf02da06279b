"""The one source of randomness for keys, nonces and scalars: the OS CSPRNG.

Nothing in keyquorum seeds its own generator; ``os.urandom`` is ``getrandom(2)``
on Linux and never returns predictable bytes after boot.
"""

from __future__ import annotations

import os

__all__ = ["random_bytes"]


def random_bytes(n: int) -> bytes:
    """Return ``n`` bytes from the operating system's CSPRNG."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError("n must be a non-negative integer")
    return os.urandom(n)
