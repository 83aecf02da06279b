"""An unseal request's share, read from the raw body into a buffer and never into a str.

Why (security review F10): parsed as JSON, a share becomes a Python ``str`` (and the
body a ``bytes``) that nobody can overwrite; dropped, both stay readable in the
process until the allocator reuses their memory, even after the service seals.
So the unseal route copies the body into a ``bytearray``, overwrites the ``bytes``
it was read as, and takes the ``"share"`` string's characters out of it into a
buffer of their own, replacing them in the body with ``x``: the body is then
parsed and validated as usual (it still has a ``share`` of the same length), and
the share reaches the seal as that buffer, which the caller wipes once used.

A share is ASCII letters, digits, dashes (and spaces, if typed from paper), so it
never needs a JSON escape; a body that writes it with escapes, or names ``share``
twice, is parsed the ordinary way (the model decides), with the copies that leaves.
What this cannot reach: the transport's read buffer and the bytes the HTTP parser
was handed (see docs/SECURITY.md).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from starlette.requests import ClientDisconnect

from keyquorum.api.runner import parse_json_body
from keyquorum.crypto.wipe import unsafe_wipe_bytes, wipe
from keyquorum.errors import InvalidRequest, TooLarge

__all__ = ["read_share_body", "take_share"]

_SHARE_KEY = re.compile(rb'"share"\s*:\s*')
_PLAIN_STRING = re.compile(rb'"([A-Za-z0-9 -]*)"')
PLACEHOLDER = ord("x")


async def read_share_body(request: Request, limit: int) -> tuple[dict[str, Any], bytearray | None]:
    """The body as a JSON object with its share replaced by ``x``s, and the share itself
    (None when the body has no plain ``"share"`` string). The caller wipes the share."""
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"request body exceeds {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise InvalidRequest("the client went away before the body ended") from None
    body = bytearray(size)
    at = 0
    for chunk in chunks:
        body[at : at + len(chunk)] = chunk
        at += len(chunk)
        unsafe_wipe_bytes(chunk)  # read from the transport for this request only
    try:
        share = take_share(body)
        redacted = bytes(body)  # no share in it; a passphrase would still be (as a str too)
        try:
            return parse_json_body(redacted), share
        finally:
            unsafe_wipe_bytes(redacted)
    finally:
        wipe(body)


def take_share(body: bytearray) -> bytearray | None:
    """Move the characters of the body's one plain ``"share"`` string into a new buffer,
    leaving ``x``s of the same length in ``body``; None (body unchanged) otherwise."""
    keys = list(_SHARE_KEY.finditer(body))
    if len(keys) != 1:
        return None
    value = _PLAIN_STRING.match(body, keys[0].end())
    if value is None:
        return None
    start, end = value.span(1)
    share = bytearray(memoryview(body)[start:end])
    for position in range(start, end):
        body[position] = PLACEHOLDER
    return share


def is_placeholder(text: str | None, share: bytearray) -> bool:
    """Whether the parsed body's share is the placeholder ``take_share`` left (so the
    buffer is the body's top-level share, not a string found somewhere else)."""
    return text is not None and len(text) == len(share) and text == "x" * len(share)
