"""Printable Shamir shares: ``kqs1-<index>-<value>-<checksum>``.

A custodian copies a share by hand or from paper, so the text carries its index
and a short checksum: a typo is caught before the share is used, with a message
that says so, rather than surfacing as a failed reconstruction.

    kqs1-02-<52 lowercase base32 chars of the 32-byte scalar>-<8 hex checksum>

A share is parsed into a ``bytearray`` (``decode_share``) that the caller wipes
once it is used (``crypto.wipe``); given a ``bytearray`` text (the unseal route
reads it from the request body), no other object ever holds the share: the
base32 value is decoded here one character at a time, with every intermediate a
number below 256 (CPython keeps those as shared constants, so no freed object
is left holding five bytes of the share, as ``base64.b32decode``'s would be).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from keyquorum.crypto.vss import Share
from keyquorum.crypto.wipe import wipe
from keyquorum.errors import InvalidRequest

PREFIX = "kqs1"


_VALUE_SIZE = 32
_BASE32_CHARS = 52  # 32 bytes in base32, without the padding
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_INVALID = 0xFF
# Character -> its 5-bit value (either case), _INVALID for anything else.
_BASE32 = bytes(
    _ALPHABET.index(c) if c in _ALPHABET else
    _ALPHABET.index(c - 32) if 0x61 <= c <= 0x7A else _INVALID
    for c in range(256))
_SPACE = 0x20
_DASH = 0x2D
_WHITESPACE = b" \t\n\r\x0b\x0c"


def _checksum(index: int, value: bytes | bytearray) -> str:
    digest = hashlib.sha256(f"{PREFIX}-{index}-".encode())
    digest.update(value)
    return digest.hexdigest()[:8]


def encode_share(share: Share) -> str:
    body = base64.b32encode(share.value).decode().rstrip("=").lower()
    return f"{PREFIX}-{share.index:02d}-{body}-{_checksum(share.index, share.value)}"


def decode_share(text: object) -> Share:
    """Parse a share; raise ``InvalidRequest`` (never echoing the share) if malformed.

    ``text`` is a ``str`` or, to leave no copy behind, a ``bytearray`` (which the
    caller wipes). The value is a new ``bytearray``: the caller wipes it after use.
    """
    if isinstance(text, Share):  # already parsed (and verified): nothing to copy
        return text
    if isinstance(text, str):
        if not text.isascii():
            raise InvalidRequest(f"share must look like {PREFIX}-<index>-<value>-<checksum>")
        raw = bytearray(text, "ascii")
        try:
            return _decode(raw)
        finally:
            wipe(raw)
    if isinstance(text, bytes | bytearray):
        return _decode(text)
    raise InvalidRequest("share must be a string")


def _decode(text: bytes | bytearray) -> Share:
    # The share without surrounding whitespace and without spaces (as typed from
    # paper), copied into one buffer of its final size: nothing is resized or re-made.
    start, end = 0, len(text)
    while start < end and text[start] in _WHITESPACE:
        start += 1
    while end > start and text[end - 1] in _WHITESPACE:
        end -= 1
    compact = bytearray(end - start)
    size = 0
    for position in range(start, end):
        char = text[position]
        if char != _SPACE:
            compact[size] = char
            size += 1
    try:
        return _parse(memoryview(compact)[:size])
    finally:
        wipe(compact)


def _parse(share: memoryview) -> Share:
    dashes = [i for i in range(len(share)) if share[i] == _DASH]  # positions are public
    if len(dashes) != 3 or share[: dashes[0]] != PREFIX.encode():
        raise InvalidRequest(f"share must look like {PREFIX}-<index>-<value>-<checksum>")
    index_text = bytes(share[dashes[0] + 1 : dashes[1]])
    if not index_text.isdigit() or not 1 <= int(index_text) <= 255:
        raise InvalidRequest("share index must be a number from 1 to 255")
    index = int(index_text)
    checksum = bytes(share[dashes[2] + 1 :]).decode("ascii").lower()
    value = _base32_value(share[dashes[1] + 1 : dashes[2]])
    if not hmac.compare_digest(checksum, _checksum(index, value)):
        wipe(value)
        raise InvalidRequest("share checksum does not match; check for a typo")
    return Share(index=index, value=value)


def _base32_value(chars: memoryview) -> bytearray:
    """The 32-byte value of 52 base32 characters, decoded into a new bytearray.

    Eight characters (40 bits) make five bytes; every step below combines numbers
    below 256, so no intermediate is a new object (see the module docstring).
    """
    if len(chars) != _BASE32_CHARS:
        raise InvalidRequest("share value is not valid base32; check for a typo")
    out = bytearray(_VALUE_SIZE)
    v = [0] * 8
    for group in range(0, _BASE32_CHARS, 8):
        count = min(8, _BASE32_CHARS - group)
        for i in range(8):
            v[i] = _BASE32[chars[group + i]] if i < count else 0
            if v[i] == _INVALID:
                wipe(out)
                raise InvalidRequest("share value is not valid base32; check for a typo")
        at = group // 8 * 5
        out[at] = (v[0] << 3) | (v[1] >> 2)
        out[at + 1] = ((v[1] & 0x03) << 6) | (v[2] << 1) | (v[3] >> 4)
        if count == 8:  # the last group has 4 characters: 20 bits, 2 whole bytes
            out[at + 2] = ((v[3] & 0x0F) << 4) | (v[4] >> 1)
            out[at + 3] = ((v[4] & 0x01) << 7) | (v[5] << 2) | (v[6] >> 3)
            out[at + 4] = ((v[6] & 0x07) << 5) | v[7]
    for i in range(8):
        v[i] = 0
    return out
