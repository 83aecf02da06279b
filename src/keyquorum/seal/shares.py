"""Printable Shamir shares: ``kqs1-<index>-<value>-<checksum>``.

A custodian copies a share by hand or from paper, so the text carries its index
and a short checksum: a typo is caught before the share is used, with a message
that says so, rather than surfacing as a failed reconstruction.

    kqs1-02-<52 lowercase base32 chars of the 32-byte scalar>-<8 hex checksum>
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from keyquorum.crypto.vss import Share
from keyquorum.errors import InvalidRequest

PREFIX = "kqs1"


def _checksum(index: int, value: bytes) -> str:
    return hashlib.sha256(f"{PREFIX}-{index}-".encode() + value).hexdigest()[:8]


def encode_share(share: Share) -> str:
    body = base64.b32encode(share.value).decode().rstrip("=").lower()
    return f"{PREFIX}-{share.index:02d}-{body}-{_checksum(share.index, share.value)}"


def decode_share(text: object) -> Share:
    """Parse a share string; raise ``InvalidRequest`` (never echoing the share) if malformed."""
    if not isinstance(text, str):
        raise InvalidRequest("share must be a string")
    parts = text.strip().replace(" ", "").split("-")
    if len(parts) != 4 or parts[0] != PREFIX:
        raise InvalidRequest(f"share must look like {PREFIX}-<index>-<value>-<checksum>")
    _, index_text, body, checksum = parts
    if not index_text.isdigit() or not 1 <= int(index_text) <= 255:
        raise InvalidRequest("share index must be a number from 1 to 255")
    try:
        padded = body.upper() + "=" * (-len(body) % 8)
        value = base64.b32decode(padded)
    except ValueError as exc:
        raise InvalidRequest("share value is not valid base32; check for a typo") from exc
    index = int(index_text)
    if len(value) != 32 or not hmac.compare_digest(checksum.lower(), _checksum(index, value)):
        raise InvalidRequest("share checksum does not match; check for a typo")
    return Share(index=index, value=value)
