"""Ed25519 scalar arithmetic written into buffers the caller owns and wipes.

PyNaCl's bindings answer every operation with a new ``bytes`` object copied out of
a buffer they allocated, and both are freed without being cleared: a Shamir
secret combined through them leaves its partial sums (each one enough to give
away a share) in the process's memory (security review F10). These wrappers call
the same libsodium functions through PyNaCl's own cffi library, with outputs
written into ``bytearray``s that ``crypto.wipe`` clears. No arithmetic is done
here: every operation is libsodium's. Scalars are 32 little-endian bytes.

Inputs may be ``bytes`` or ``bytearray``; an output buffer is never also an input
(libsodium is not asked to handle overlapping arguments).
"""

from __future__ import annotations

from typing import Any

from nacl._sodium import ffi as _ffi
from nacl._sodium import lib as _lib

from keyquorum.crypto.random import random_buffer
from keyquorum.crypto.wipe import wipe

__all__ = ["SCALAR_SIZE", "Scalar", "add_into", "base_mul", "invert_into", "is_canonical",
           "mul_into", "random_scalar", "reduce_into", "sub_into"]

SCALAR_SIZE = 32
POINT_SIZE = 32
WIDE_SIZE = 64

Scalar = bytes | bytearray


def _in(value: Scalar, size: int) -> Any:
    if not isinstance(value, bytes | bytearray) or len(value) != size:
        raise ValueError(f"expected {size} bytes")
    return _ffi.from_buffer(value)


def _out(buffer: bytearray, size: int) -> Any:
    if not isinstance(buffer, bytearray) or len(buffer) != size:
        raise ValueError(f"the output must be a bytearray of {size} bytes")
    return _ffi.from_buffer(buffer, require_writable=True)


def reduce_into(out: bytearray, wide: Scalar) -> None:
    """out = wide mod L, for 64-byte ``wide``."""
    _lib.crypto_core_ed25519_scalar_reduce(_out(out, SCALAR_SIZE), _in(wide, WIDE_SIZE))


def add_into(out: bytearray, x: Scalar, y: Scalar) -> None:
    """out = x + y mod L."""
    _lib.crypto_core_ed25519_scalar_add(_out(out, SCALAR_SIZE), _in(x, SCALAR_SIZE),
                                        _in(y, SCALAR_SIZE))


def sub_into(out: bytearray, x: Scalar, y: Scalar) -> None:
    """out = x - y mod L."""
    _lib.crypto_core_ed25519_scalar_sub(_out(out, SCALAR_SIZE), _in(x, SCALAR_SIZE),
                                        _in(y, SCALAR_SIZE))


def mul_into(out: bytearray, x: Scalar, y: Scalar) -> None:
    """out = x * y mod L."""
    _lib.crypto_core_ed25519_scalar_mul(_out(out, SCALAR_SIZE), _in(x, SCALAR_SIZE),
                                        _in(y, SCALAR_SIZE))


def invert_into(out: bytearray, x: Scalar) -> None:
    """out = 1 / x mod L; ``ValueError`` for zero."""
    if _lib.crypto_core_ed25519_scalar_invert(_out(out, SCALAR_SIZE), _in(x, SCALAR_SIZE)):
        raise ValueError("zero has no inverse")


def random_scalar() -> bytearray:
    """A uniform scalar mod L: 512 random bits reduced, so the bias is < 2^-259."""
    wide = random_buffer(WIDE_SIZE)
    out = bytearray(SCALAR_SIZE)
    reduce_into(out, wide)
    wipe(wide)
    return out


def is_canonical(scalar: object) -> bool:
    """True if ``scalar`` is 32 bytes and < L (reducing it changes nothing)."""
    if not isinstance(scalar, bytes | bytearray) or len(scalar) != SCALAR_SIZE:
        return False
    wide = bytearray(WIDE_SIZE)
    wide[:SCALAR_SIZE] = scalar  # copied into the buffer, no intermediate object
    reduced = bytearray(SCALAR_SIZE)
    reduce_into(reduced, wide)
    equal = _lib.sodium_memcmp(_in(reduced, SCALAR_SIZE), _in(scalar, SCALAR_SIZE),
                               SCALAR_SIZE) == 0  # constant time
    wipe(wide)
    wipe(reduced)
    return bool(equal)


def base_mul(scalar: Scalar) -> bytes:
    """g^scalar (a public point). libsodium refuses a zero scalar (the identity):
    ``ValueError``."""
    point = bytearray(POINT_SIZE)
    if _lib.crypto_scalarmult_ed25519_base_noclamp(_out(point, POINT_SIZE),
                                                   _in(scalar, SCALAR_SIZE)):
        raise ValueError("the scalar gives the identity")
    return bytes(point)
