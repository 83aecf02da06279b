"""The key-name grammar written as one regular expression (the OpenAPI document's) accepts
exactly the names ``validate_key_name`` accepts, so schema-driven clients and the server
agree on every name."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from keyquorum.errors import InvalidRequest
from keyquorum.keys.names import MAX_NAME_LENGTH, NAME_PATTERN, validate_key_name


def _valid(name: str) -> bool:
    try:
        validate_key_name(name)
    except InvalidRequest:
        return False
    return True


@settings(max_examples=2000)
@given(st.text(alphabet="ab9._-/A ", min_size=1, max_size=16))
def test_the_pattern_and_the_validator_agree(name: str) -> None:
    assert _valid(name) == bool(re.fullmatch(NAME_PATTERN, name)), name


@settings(max_examples=500)
@given(st.from_regex(NAME_PATTERN, fullmatch=True))
def test_every_name_the_pattern_generates_is_valid_when_short_enough(name: str) -> None:
    assert _valid(name) == (len(name) <= MAX_NAME_LENGTH)


def test_dot_segments_are_refused_by_both() -> None:
    for name in (".", "..", "a/./b", "a/..", "../a", "a//b", "/a", "a/"):
        assert not _valid(name) and not re.fullmatch(NAME_PATTERN, name), name
    for name in ("...", ".a", "..a", "a.b/c-d_e"):
        assert _valid(name) and re.fullmatch(NAME_PATTERN, name), name
