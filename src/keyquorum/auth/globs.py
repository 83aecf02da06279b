"""Globs over hierarchical key names, compiled once to anchored regular expressions.

``*`` matches within one ``/``-segment, ``**`` matches across segments, ``?``
matches one character other than ``/``; everything else is literal. ``fnmatch``
is not used on purpose: its ``*`` crosses ``/``, so ``payments/*`` would also
grant ``payments/cards/eu`` — wider than the policy author wrote.
"""

from __future__ import annotations

import re
from functools import lru_cache

from keyquorum.errors import InvalidRequest

MAX_GLOB_LENGTH = 256
_GLOB_CHARS = re.compile(r"[a-z0-9._\-/*?]+")
_WILDCARD_ALL = frozenset({"*", "**"})


def validate_glob(glob: object) -> str:
    """Return ``glob`` if it is a well-formed key glob, else raise ``InvalidRequest``.

    The rules mirror key names (segments of ``[a-z0-9._-]`` joined by ``/``) so a
    glob that could never match any key is refused when the policy is written.
    """
    if not isinstance(glob, str) or not glob:
        raise InvalidRequest("a rule's keys must be a non-empty glob string")
    if len(glob) > MAX_GLOB_LENGTH:
        raise InvalidRequest(f"a rule's keys glob must be at most {MAX_GLOB_LENGTH} characters")
    if not _GLOB_CHARS.fullmatch(glob):
        raise InvalidRequest(
            f"bad glob {glob!r}: only a-z 0-9 . _ - / and the wildcards * ** ? are allowed")
    if "***" in glob:
        raise InvalidRequest(f"bad glob {glob!r}: at most two * in a row")
    for segment in glob.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidRequest(f"bad glob {glob!r}: no empty, '.' or '..' segment")
    return glob


def matches_everything(glob: str) -> bool:
    """Whether a rule with this glob applies to operations that name no key (list, random)."""
    return glob in _WILDCARD_ALL


@lru_cache(maxsize=4096)
def compile_glob(glob: str) -> re.Pattern[str]:
    """Translate a validated glob to an anchored regex (cached: globs repeat across policies)."""
    parts: list[str] = []
    index = 0
    while index < len(glob):
        char = glob[index]
        if glob.startswith("**", index):
            parts.append(".*")
            index += 2
            continue
        if char == "*":
            parts.append("[^/]*")
        elif char == "?":
            parts.append("[^/]")
        else:
            parts.append(re.escape(char))
        index += 1
    return re.compile("".join(parts) + r"\Z")


def glob_matches(glob: str, key_name: str) -> bool:
    """Whether ``key_name`` is covered by ``glob``."""
    return compile_glob(glob).match(key_name) is not None
