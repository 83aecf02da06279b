"""Base64 on the crypto hot paths: CPython's codec for small values, pybase64 for large.

A 1 KiB item travels as about 1.4 KB of base64 in each direction. pybase64's SIMD
codec (libbase64) does that in under 1 µs where ``binascii`` takes 2-4 µs, but it
**releases the GIL on every call**, however small the input. In the server, the
event loop thread then has to win the GIL back from whichever thread took it (the
audit writer, a batch thread): measured under wrk on a single-encrypt load, each
small call cost the loop 30-60 µs of wall time and added a voluntary context switch
per request, which cut single-request throughput by about a fifth. So values below
``LARGE`` go through ``binascii`` (which keeps the GIL), and only large ones, where
decoding takes long enough that letting other threads run is worth it, through
pybase64.

Decoding is strict on both paths and they accept exactly the same inputs: only the
alphabet asked for, correct padding, nothing after it, and no stray padding after
a complete quantum (``binascii``'s ``strict_mode`` alone accepts ``QUJD=``; the
length check below refuses it, as pybase64 does). ``tests/test_b64.py`` holds both
paths to that on arbitrary input. Callers that need one canonical text form still
check the unused trailing bits themselves.
"""

from __future__ import annotations

import binascii

import pybase64

Error = ValueError
"""What a malformed input raises (``binascii.Error`` is a ``ValueError`` too)."""

LARGE = 64 * 1024
"""Inputs of at least this many bytes use pybase64 (above it, ``binascii`` would hold
the GIL for 100 µs or more, longer than handing it over costs)."""

_URL_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_STANDARD_TO_URL = bytes.maketrans(b"+/", b"-_")


def decode_standard(data: bytes) -> bytes:
    """Standard alphabet (``+/``), padded; anything else raises ``ValueError``."""
    size = len(data)
    if size < LARGE:
        # strict_mode accepts padding after a complete quantum ("QUJD=", "QUJD===="):
        # a padded encoding is a whole number of quanta with at most two "=".
        if size % 4 or data.endswith(b"==="):
            raise binascii.Error("incorrect padding")
        return binascii.a2b_base64(data, strict_mode=True)
    return pybase64.b64decode(data, validate=True)


def decode_url(data: bytes) -> bytes:
    """URL alphabet (``-_``), padded; the standard alphabet's ``+/`` are refused too
    (pybase64 accepted them beside ``-_``, and deprecates that)."""
    if b"+" in data or b"/" in data:
        raise binascii.Error("only the URL-safe base64 alphabet is allowed")
    if len(data) < LARGE:
        return decode_standard(data.translate(_URL_TO_STANDARD))  # the same length
    return pybase64.b64decode(data, altchars=b"-_", validate=True)


def encode_standard(data: bytes) -> str:
    if len(data) < LARGE:
        return binascii.b2a_base64(data, newline=False).decode("ascii")
    return pybase64.b64encode_as_string(data)


def encode_url(data: bytes) -> bytes:
    """URL alphabet, with its padding (callers strip it where the format has none)."""
    if len(data) < LARGE:
        return binascii.b2a_base64(data, newline=False).translate(_STANDARD_TO_URL)
    return pybase64.b64encode(data, altchars=b"-_")
