"""Checks on the fields of a request body, shared by every service that reads one.

Kept apart from the services themselves so that any of them (crypto operations,
custodian proofs) can use the same rules and messages without importing another.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from keyquorum.errors import InvalidRequest


def b64decode_field(item: dict[str, Any], field: str, *, required: bool = True) -> bytes | None:
    value = item.get(field)
    if value is None:
        if required:
            raise InvalidRequest(f"{field} is required (standard base64)")
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{field} must be a standard base64 string")
    try:
        # strict_mode: only the standard alphabet, correct padding, nothing after it
        # (one C call; b64decode(validate=True) adds a regex pass over the value).
        return binascii.a2b_base64(value.encode("ascii"), strict_mode=True)
    except (binascii.Error, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise InvalidRequest(f"{field} is not valid standard base64") from exc


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def check_fields(item: object, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise InvalidRequest("each item must be a JSON object")
    unknown = set(item) - allowed
    if unknown:
        raise InvalidRequest(f"unknown fields: {', '.join(sorted(unknown))}")
    return item
