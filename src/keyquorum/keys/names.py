"""Key name validation: hierarchical names with no path tricks.

Names appear verbatim in URL paths and policy globs, so the grammar is strict:
1-128 characters, segments of ``[a-z0-9._-]`` separated by ``/``, no empty,
``.`` or ``..`` segment.
"""

from __future__ import annotations

import re
from functools import lru_cache

from keyquorum.errors import InvalidRequest

MAX_NAME_LENGTH = 128
_SEGMENT_PATTERN = r"([a-z0-9_-][a-z0-9._-]*|\.[a-z0-9_-][a-z0-9._-]*|\.\.[a-z0-9._-]+)"
NAME_PATTERN = f"^{_SEGMENT_PATTERN}(/{_SEGMENT_PATTERN})*$"
"""The grammar as one regular expression (for the OpenAPI document): segments of
``[a-z0-9._-]`` that are not ``.`` or ``..``; ``validate_key_name`` also bounds the length."""
_SEGMENT = re.compile(r"[a-z0-9._-]+")


def validate_key_name(name: object) -> str:
    """Return ``name`` if it follows the grammar, else raise ``InvalidRequest`` naming the rule."""
    if not isinstance(name, str):
        raise InvalidRequest("key name must be a string")
    return _checked(name)


@lru_cache(maxsize=16384)
def _checked(name: str) -> str:
    """Every request names a key; the same few names are checked once (refusals raise and
    are never cached)."""
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise InvalidRequest(f"key name must be 1-{MAX_NAME_LENGTH} characters")
    for segment in name.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidRequest("key name segments must not be empty, '.' or '..'")
        if not _SEGMENT.fullmatch(segment):
            raise InvalidRequest("key name segments may contain only a-z, 0-9, '.', '_' and '-'")
    return name
