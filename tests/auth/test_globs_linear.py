"""Globs match in linear time (F5) and still give the answers the old regexes gave."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyquorum.auth.globs import (
    _linear_match_with_steps,
    _LinearGlob,
    compile_glob,
    glob_matches,
    validate_glob,
)


def old_regex_matches(glob: str, key_name: str) -> bool:
    """The reference: the translation globs.py used before F5 (``**`` → ``.*``)."""
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
    return re.compile("".join(parts) + r"\Z").match(key_name) is not None


def assert_agrees_with_old_regex(glob: str, key_name: str) -> None:
    expected = old_regex_matches(glob, key_name)
    assert glob_matches(glob, key_name) is expected
    match = compile_glob(glob).match(key_name)  # what policy rules call
    assert (match is not None) is expected
    if match is not None:
        assert match.group() == key_name
    matched, steps = _linear_match_with_steps(glob, key_name)  # the automaton on its own
    assert matched is expected
    assert steps <= len(key_name)


# -- the same answers as before ---------------------------------------------------

@pytest.mark.parametrize(("glob", "key", "matches"), [
    ("payments/*", "payments/cards", True),
    ("payments/*", "payments/cards/eu", False),  # * stays inside one segment
    ("payments/**", "payments/cards/eu", True),  # ** crosses segments
    ("payments/**", "payments/", True),  # ** may match nothing, even after a /
    ("payments/**", "payments", False),
    ("**", "payments/cards/eu", True),
    ("**", "", True),
    ("?", "a", True),
    ("?", "/", False),  # ? never matches /
    ("a?b", "a/b", False),
    ("a**b", "a/x/b", True),  # ** inside a segment still crosses /
    ("a**b", "ab", True),
    ("**a*b", "xa/ab", True),  # where going back to the last star only would fail
    ("**a*b", "xa/a/b", False),
    ("a*b*c", "axbxc", True),
    ("a*b*c", "axb/c", False),
    ("**/cards/*", "a/b/cards/x", True),
    ("**/cards/*", "a/b/cards/x/y", False),
    ("team-*/**", "team-eu/db/k", True),
    ("team-*/**", "team-eu", False),
    ("a.b", "axb", False),  # . is literal
    ("a**", "a\n", False),  # kept quirk: ** was ".", which stops at a newline
    ("a*", "a\n", True),
    ("a?", "a\n", True),
    ("a/**/b", "a/b", False),
    ("a/**/b", "a//b", True),
])
def test_hand_picked_globs_keep_their_answers(glob: str, key: str, matches: bool) -> None:
    assert old_regex_matches(glob, key) is matches
    assert_agrees_with_old_regex(glob, key)


_SEGMENTS = st.text("ab*?", min_size=1, max_size=6).filter(lambda s: "***" not in s)
_GLOBS = st.lists(_SEGMENTS, min_size=1, max_size=4).map("/".join)
_NAMES = st.text("ab/", max_size=14)


@st.composite
def _glob_and_name(draw: st.DrawFn) -> tuple[str, str]:
    """A glob, and either a random name or one built to fit it (so both answers occur)."""
    glob = draw(_GLOBS)
    if draw(st.booleans()):
        return glob, draw(_NAMES)
    fill = {"**": st.text("ab/", max_size=4), "*": st.text("ab", max_size=3),
            "?": st.sampled_from("ab")}
    pieces: list[str] = []
    index = 0
    while index < len(glob):
        token = "**" if glob.startswith("**", index) else glob[index]
        pieces.append(draw(fill[token]) if token in fill else token)
        index += len(token)
    return glob, "".join(pieces)


@settings(max_examples=600, deadline=None)
@given(_glob_and_name())
def test_generated_globs_and_names_get_the_old_regex_answer(case: tuple[str, str]) -> None:
    glob, key_name = case
    validate_glob(glob)  # generated globs are ones a policy could hold
    assert_agrees_with_old_regex(glob, key_name)


# -- adversarial globs finish at once ----------------------------------------------

def assert_linear_work(glob: str, key_name: str, matched: bool) -> int:
    """The glob runs on the automaton, which reads each character at most once."""
    assert isinstance(compile_glob(validate_glob(glob)), _LinearGlob)
    assert glob_matches(glob, key_name) is matched
    answer, steps = _linear_match_with_steps(glob, key_name)
    assert answer is matched
    assert steps <= len(key_name)
    return steps


@pytest.mark.parametrize("key_name", ["db/" * 1500 + "x", "db/" * 3000])
def test_three_double_stars_against_a_long_name_take_one_pass(key_name: str) -> None:
    assert_linear_work("**/db/**/db/**/k", key_name, matched=False)
    # Ending in a wildcard, the literal-suffix check cannot refuse it early: full pass.
    steps = assert_linear_work("**/db/**/db/**/k*", key_name, matched=False)
    assert steps == len(key_name)


@pytest.mark.parametrize("repeats", [8, 10])
def test_exponential_author_globs_take_one_pass(repeats: int) -> None:
    assert_linear_work("**a" * repeats + "**b", "a" * 40, matched=False)
    assert_linear_work("**a" * repeats + "**b", "a" * 39 + "b", matched=True)
    steps = assert_linear_work("**a" * repeats + "**b*", "a" * 40, matched=False)
    assert steps == 40


def test_worst_case_for_the_automaton_is_one_pass_over_64_kib() -> None:
    # A leading ** keeps the state alive to the end, no literal prefix or suffix lets
    # a string comparison answer first, and 256 characters make a 255-bit state:
    # every character is stepped over, each on about the widest state a glob can have.
    glob = "**" + "a?" * 125 + "a**?"
    assert len(glob) == 256
    key_name = "a" * (64 * 1024 - 1) + "/"
    steps = assert_linear_work(glob, key_name, matched=False)
    assert steps == len(key_name)


@pytest.mark.parametrize("glob", [
    "a*b*c", "**a*b", "**/**", "**/*.key", "a*b**c", "*a**", "a/**/b/**", "x/*a*/y",
])
def test_globs_that_would_make_re_backtrack_run_on_the_automaton(glob: str) -> None:
    assert isinstance(compile_glob(validate_glob(glob)), _LinearGlob)


@pytest.mark.parametrize("glob", [
    "payments/cards", "payments/*", "payments/**", "**", "*", "*/cards", "**/cards",
    "team-*/**", "db-*.key", "a*/b**c",
])
def test_everyday_globs_keep_the_regex(glob: str) -> None:
    assert isinstance(compile_glob(validate_glob(glob)), re.Pattern)


def test_worst_cases_for_the_kept_regexes_finish_in_a_subprocess() -> None:
    # re's steps cannot be counted, so the worst inputs for the shapes that keep a
    # regex run in a child process; a hang (super-linear backtracking) is a failure.
    code = textwrap.dedent("""
        import re
        from keyquorum.auth.globs import compile_glob, validate_glob
        long = "a" * (64 * 1024 - 1) + "/"
        segments = "/".join(["a" * 1024] * 63) + "/a"
        more_segments = "/".join(["a" * 780] * 84) + "/"
        cases = [
            ("?" * 127 + "*" + "?" * 128, long),  # one * per segment, no **
            ("**" + "?" * 254, long),  # one ** and nothing else
            (("?*?/" * 64)[:-1], segments),  # 64 pinned segments
            ("?*/" * 83 + "**" + "?" * 3, more_segments),  # pinned segments, then one **
        ]
        for glob, name in cases:
            pattern = compile_glob(validate_glob(glob))
            assert isinstance(pattern, re.Pattern), glob
            assert pattern.match(name) is None, glob
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=10)
