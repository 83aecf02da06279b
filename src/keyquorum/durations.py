"""Durations as the API accepts them: seconds, or a string like ``90d`` or ``1h30m``.

Shared by every field that takes a duration (token ``ttl``, key
``rotation_period``), so all of them accept and reject the same spellings.
"""

from __future__ import annotations

import math
import re

from keyquorum.errors import InvalidRequest

MAX_DURATION = 100 * 365 * 86400.0
"""A hundred years: anything longer is a mistake, and keeps epoch arithmetic finite."""

_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_COMPOUND = re.compile(r"(?:(\d{1,10})d)?(?:(\d{1,10})h)?(?:(\d{1,10})m)?(?:(\d{1,10})s)?")
_NUMBER = re.compile(r"\d{1,12}(?:\.\d{1,9})?")


def parse_duration(value: int | float | str | None, *, field: str = "duration") -> float | None:
    """Return ``value`` as positive seconds, or ``None`` when no duration was given.

    Accepted: a positive number of seconds (``3600``, ``"3600"``), or units in the
    order d, h, m, s, each at most once (``"90d"``, ``"12h"``, ``"1h30m"``).
    """
    if value is None:
        return None
    rule = (f"{field} must be a positive number of seconds or a string like "
            "90d, 12h, 30m, 45s or 1h30m")
    if isinstance(value, bool):  # bool is an int subclass; True is not "1 second"
        raise InvalidRequest(rule)
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_text(value.strip(), rule)
    else:
        raise InvalidRequest(rule)
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidRequest(rule)
    if seconds > MAX_DURATION:
        raise InvalidRequest(f"{field} must be at most 100 years")
    return seconds


def _parse_text(text: str, rule: str) -> float:
    if _NUMBER.fullmatch(text):
        return float(text)
    match = _COMPOUND.fullmatch(text)
    if not text or match is None:
        raise InvalidRequest(rule)
    return float(sum(int(part) * factor
                     for part, (_unit, factor) in zip(match.groups(), _UNITS, strict=True)
                     if part is not None))
