"""Vault's request fields as the ``vault``/``bao`` command line and hvac send them.

The command line sends ``key=value`` pairs as JSON strings (``bits="256"``,
``exportable="true"``); hvac sends JSON types. Vault's field schema accepts
both, so these readers do too, and every bad value is an ``InvalidRequest``
naming the field and the rule.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from keyquorum.errors import InvalidRequest

_TRUE = {"true", "1", "t", "yes"}
_FALSE = {"false", "0", "f", "no", ""}


def boolean(body: dict[str, Any], name: str, default: bool = False) -> bool:
    value = body.get(name, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise InvalidRequest(f"{name} must be a boolean")


def integer(body: dict[str, Any], name: str, default: int | None = None, *,
            low: int = 0, high: int = 2**31 - 1) -> int | None:
    value = body.get(name, default)
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidRequest(f"{name} must be a whole number from {low} to {high}")
    return value


def text(body: dict[str, Any], name: str, default: str | None = None, *,
         required: bool = False, max_length: int = 1024) -> str | None:
    value = body.get(name, default)
    if value is None or value == "":
        if required:
            raise InvalidRequest(f"missing {name} in request")
        return default if value is None else value
    if not isinstance(value, str) or len(value) > max_length:
        raise InvalidRequest(f"{name} must be a string of at most {max_length} characters")
    return value


def b64(body: dict[str, Any], name: str, *, required: bool = False,
        allow_empty: bool = True) -> bytes | None:
    """Standard base64 (Vault's encoding for plaintexts, inputs and AAD)."""
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidRequest(f"missing {name} in request")
        return None
    return decode_b64(value, name, allow_empty=allow_empty)


def decode_b64(value: object, name: str, *, allow_empty: bool = True) -> bytes:
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a base64 string")
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{name} is not valid base64") from None
    if not decoded and not allow_empty:
        raise InvalidRequest(f"{name} must not be empty")
    return decoded


def encode_b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def refuse_unsupported(body: dict[str, Any], names: tuple[str, ...]) -> None:
    """Parameters Vault honours and keyquorum cannot: refused, never silently ignored."""
    for name in names:
        value = body.get(name)
        if value not in (None, "", False, "false", 0, "0"):
            raise InvalidRequest(f"{name} is not supported by keyquorum's transit API "
                                 "(docs/VAULT-TRANSIT.md)")


def duration_seconds(body: dict[str, Any], name: str) -> int | None:
    """A Vault duration: seconds as a number, or a string like ``24h``, ``30m``, ``90s``."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidRequest(f"{name} must be a duration")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str) and value.isdigit():
        seconds = int(value)
    elif isinstance(value, str) and value:
        seconds = _parse_go_duration(value, name)
    else:
        raise InvalidRequest(f"{name} must be a duration")
    if seconds < 0:
        raise InvalidRequest(f"{name} must not be negative")
    return seconds


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _parse_go_duration(value: str, name: str) -> int:
    total, number = 0, ""
    for char in value:
        if char.isdigit():
            number += char
        elif char in _UNITS and number:
            total += int(number) * _UNITS[char]
            number = ""
        else:
            raise InvalidRequest(f"{name} must be a duration like 24h or 3600s")
    if number:
        raise InvalidRequest(f"{name} must be a duration like 24h or 3600s")
    return total
