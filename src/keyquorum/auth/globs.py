"""Globs over hierarchical key names, matched in time linear in the name's length.

``*`` matches within one ``/``-segment, ``**`` matches across segments, ``?``
matches one character other than ``/``; everything else is literal, and a glob
covers a name only as a whole. ``fnmatch`` is not used on purpose: its ``*``
crosses ``/``, so ``payments/*`` would also grant ``payments/cards/eu`` — wider
than the policy author wrote. ``**`` is not limited to whole segments: ``a/**``
covers ``a/`` and ``a**b`` covers ``a/x/b``. (One quirk kept from the regex
version, where ``**`` was ``.``: ``**`` does not match a newline, which ``*`` and
``?`` do; no valid key name has one.)

Why not a regex for every glob (security finding F5). Globs used to become regexes
(``**`` → ``.*``, ``*`` → ``[^/]*``) run by ``re``, a backtracking engine: when a
match fails it retries every way of sharing the name among the quantifiers, so
``k`` quantifiers that can absorb the same characters cost about ``len(name)**k``
steps. ``**/db/**/db/**/k`` took 22 s on a 4.5 KB key name taken straight from a
URL — every other request waited — and a policy author's ``"**a"*10 + "**b"``
took 49 s on 40 characters. Several ``*`` in one segment are no better:
``*a*a*a*b`` took 8.6 s on a 600-character name, so capping ``**`` would not do.

Now ``compile_glob`` keeps a regex only where ``re`` is provably cheap (it is the
fastest matcher for everyday globs such as ``payments/*`` and ``payments/**``):

- no ``**``, and at most one ``*`` per ``/``-segment: nothing crosses ``/``, so
  the k-th ``/`` of the glob must meet the k-th ``/`` of the name. Within a
  segment the one ``*`` tries each length once, and only the length that ends on
  that ``/`` (or the end) goes on, so ``re`` never returns to an earlier
  segment: at most (len(name)+1) * (len(glob)+1) steps.
- one ``**``, no ``*`` in its segment or after it, at most one ``*`` in each
  segment before it: those segments are pinned as above, then one ``.*`` tries
  each length once against a fixed-width rest: the same bound.

Every other glob runs on ``_LinearGlob``, a bit-parallel simulation of the glob's
automaton (Shift-And with wildcards): the glob's tokens are positions, and the
set of positions reachable after each character of the name is one int, updated
with a fixed handful of shifts, ands and ors per character. Each character is read
once, never again, whatever the glob: len(name) steps on len(glob)+1 bits. The
simpler two-pointer matcher (on a mismatch, go back to the last star only) was
not chosen because it is only correct when every star matches anything: here
``*`` stops at ``/``, and it answers no for ``**a*b`` against ``xa/ab``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import cast

from keyquorum.errors import InvalidRequest

MAX_GLOB_LENGTH = 256
_GLOB_CHARS = re.compile(r"[a-z0-9._\-/*?]+")
_WILDCARD_ALL = frozenset({"*", "**"})

_ANY = "**"  # any run of characters, "/" included
_SEGMENT = "*"  # any run of characters within one segment
_ONE = "?"  # one character other than "/"
_WILDCARDS = frozenset({_ANY, _SEGMENT, _ONE})
_REGEX_OF = {_ANY: ".*", _SEGMENT: "[^/]*", _ONE: "[^/]"}
_WHOLE_NAME = re.compile(r".*", re.DOTALL)  # a real Match over the whole name, as re gave


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


def _tokens(glob: str) -> tuple[str, ...]:
    """The glob as ``**``, ``*``, ``?`` or single literal characters.

    A run of stars becomes one token (``**`` if it holds one, else ``*``): it covers
    the same names, and the automaton relies on no two stars being adjacent.
    """
    tokens: list[str] = []
    index = 0
    while index < len(glob):
        if glob.startswith("**", index):
            token, index = _ANY, index + 2
        else:
            token, index = glob[index], index + 1
        if token in (_ANY, _SEGMENT) and tokens and tokens[-1] in (_ANY, _SEGMENT):
            tokens[-1] = _ANY if _ANY in (token, tokens[-1]) else _SEGMENT
        else:
            tokens.append(token)
    return tuple(tokens)


def _regex_is_linear(tokens: tuple[str, ...]) -> bool:
    """Whether ``re`` runs this glob's regex within the bound in the module docstring."""
    if tokens.count(_ANY) > 1:
        return False
    pinned = len(tokens)  # tokens before this index are in segments closed by a "/"
    if _ANY in tokens:
        before_any = tokens[:tokens.index(_ANY)]
        pinned = len(before_any) - before_any[::-1].index("/") if "/" in before_any else 0
        if _SEGMENT in tokens[pinned:]:
            return False
    stars_in_segment = 0
    for part in tokens[:pinned]:
        if part == "/":
            stars_in_segment = 0
        elif part == _SEGMENT:
            stars_in_segment += 1
            if stars_in_segment > 1:
                return False
    return True


class _LinearGlob:
    """A glob matched by bit-parallel automaton simulation: one pass, no backtracking.

    Bit ``i`` of the state means "the name so far is covered by the first ``i``
    tokens". A literal prefix and suffix (no wildcard) are compared as strings
    first; the automaton runs on the characters between them.
    """

    __slots__ = ("_accept", "_default", "_prefix", "_stars", "_start", "_suffix", "_table")

    def __init__(self, tokens: tuple[str, ...]) -> None:
        head = 0
        while head < len(tokens) and tokens[head] not in _WILDCARDS:
            head += 1
        tail = len(tokens)
        while tail > head and tokens[tail - 1] not in _WILDCARDS:
            tail -= 1
        self._prefix = "".join(tokens[:head])
        self._suffix = "".join(tokens[tail:])
        middle = tokens[head:tail]
        any_bits = segment_bits = one_bits = 0
        literal_bits: dict[str, int] = {}
        for position, token in enumerate(middle):
            bit = 1 << position
            if token == _ANY:
                any_bits |= bit
            elif token == _SEGMENT:
                segment_bits |= bit
            elif token == _ONE:
                one_bits |= bit
            else:
                literal_bits[token] = literal_bits.get(token, 0) | bit
        stars = any_bits | segment_bits
        # Per character: (positions that step past it, positions that stay on it).
        table = {char: (bits | one_bits, stars) for char, bits in literal_bits.items()}
        table["/"] = (literal_bits.get("/", 0), any_bits)  # * and ? stop at "/"
        table["\n"] = (literal_bits.get("\n", 0) | one_bits, segment_bits)  # ** was "."
        self._table = table
        self._default = (one_bits, stars)
        self._stars = stars
        self._start = 1 | (stars & 1) << 1  # a leading star may match nothing
        self._accept = 1 << len(middle)

    def run(self, key_name: str) -> tuple[bool, int]:
        """Whether the glob covers ``key_name``, and how many characters the automaton
        stepped over: each at most once, with a fixed number of int operations each."""
        prefix, suffix = self._prefix, self._suffix
        end = len(key_name) - len(suffix)
        if end < len(prefix) or not key_name.startswith(prefix) \
                or not key_name.endswith(suffix):
            return False, 0
        table, default, stars = self._table, self._default, self._stars
        state, steps = self._start, 0  # steps: read after the loop
        for steps, char in enumerate(key_name[len(prefix):end], 1):  # noqa: B007
            advance, stay = table.get(char, default)
            state = ((state & advance) << 1) | (state & stay)
            state |= (state & stars) << 1  # a star may be left having matched nothing
            if not state:
                break
        return state & self._accept != 0, steps

    def match(self, key_name: str) -> re.Match[str] | None:
        """Like ``re.Pattern.match`` for the old anchored regex: a match over the whole
        name, or None."""
        return _WHOLE_NAME.match(key_name) if self.run(key_name)[0] else None


@lru_cache(maxsize=4096)
def compile_glob(glob: str) -> re.Pattern[str]:
    """A matcher for a validated glob (cached: globs repeat across policies).

    Its ``match(key_name)`` is None unless the glob covers the whole name. It is a
    real regex where ``re`` is provably linear on it, else a ``_LinearGlob``; only
    ``match`` is offered on the latter.
    """
    tokens = _tokens(glob)
    if _regex_is_linear(tokens):
        return re.compile("".join(_REGEX_OF.get(t) or re.escape(t) for t in tokens) + r"\Z")
    # Typed as a Pattern so callers that hold ``re.Pattern`` (policy rules) still check.
    return cast("re.Pattern[str]", _LinearGlob(tokens))


def glob_matches(glob: str, key_name: str) -> bool:
    """Whether ``key_name`` is covered by ``glob``."""
    return compile_glob(glob).match(key_name) is not None


def _linear_match_with_steps(glob: str, key_name: str) -> tuple[bool, int]:
    """The automaton's answer and step count for any glob, whichever matcher
    ``compile_glob`` picks (for tests that bound the work)."""
    return _LinearGlob(_tokens(glob)).run(key_name)
