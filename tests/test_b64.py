"""Both base64 paths of the crypto hot paths are never looser than CPython's strict mode.

``keyquorum.b64`` replaced ``binascii.a2b_base64(..., strict_mode=True)`` on every
crypto item (request fields, the ``kq1:`` text form): small values through
``binascii`` with a padding check of its own, large ones through pybase64. A
decoder that accepted more would give one ciphertext several text forms or let
junk through; these properties hold each path to the old rules on arbitrary input,
the two paths to the same answers, and both to the same bytes on every valid input.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyquorum import b64

# The standard and URL alphabets, padding, whitespace and a non-ASCII byte: the
# characters where a lax decoder would differ.
CHARACTERS = b"ABCDab09+/-_= \n\x80"
NEAR_ALPHABET = st.binary(max_size=24).map(
    lambda raw: bytes(CHARACTERS[c % len(CHARACTERS)] for c in raw))
PATHS = ("binascii", "pybase64")


@contextmanager
def path(name: str) -> Iterator[None]:
    """Send every input, whatever its size, down one path."""
    saved = b64.LARGE
    b64.LARGE = 0 if name == "pybase64" else 1 << 62
    try:
        yield
    finally:
        b64.LARGE = saved


def strict(data: bytes) -> bytes | None:
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except binascii.Error:
        return None


def answer(decode: Callable[[bytes], bytes], data: bytes) -> bytes | None:
    try:
        return decode(data)
    except ValueError:
        return None


@given(NEAR_ALPHABET)
def test_standard_decoding_accepts_nothing_strict_mode_refuses_on_either_path(
        data: bytes) -> None:
    for name in PATHS:
        with path(name):
            decoded = answer(b64.decode_standard, data)
        if decoded is not None:
            assert strict(data) == decoded


@given(NEAR_ALPHABET)
def test_both_paths_accept_and_refuse_the_same_inputs(data: bytes) -> None:
    answers = {}
    for name in PATHS:
        with path(name):
            answers[name] = (answer(b64.decode_standard, data), answer(b64.decode_url, data))
    assert answers["binascii"] == answers["pybase64"]


@pytest.mark.parametrize("name", PATHS)
@given(raw=st.binary(max_size=2048))
def test_every_encoding_round_trips_in_both_alphabets(name: str, raw: bytes) -> None:
    with path(name):
        assert b64.decode_standard(b64.encode_standard(raw).encode()) == raw
        assert b64.encode_standard(raw) == base64.b64encode(raw).decode()
        assert b64.decode_url(b64.encode_url(raw)) == raw
        assert b64.encode_url(raw) == base64.urlsafe_b64encode(raw)


def test_values_past_the_threshold_round_trip() -> None:
    raw = bytes(range(256)) * (b64.LARGE // 256 + 3)
    text = b64.encode_standard(raw)
    assert len(text) >= b64.LARGE
    assert b64.decode_standard(text.encode()) == raw
    assert b64.decode_url(b64.encode_url(raw)) == raw


@pytest.mark.parametrize("name", PATHS)
@pytest.mark.parametrize("text", [b"YQ", b"YQ=", b"Y Q==", b"YQ==\n", b"YQ==YQ==", b"=YWJj",
                                  b"YW=j", b"ab-_", b"\x80AAA", b"YWJj=", b"YWJj===="])
def test_malformed_standard_base64_is_refused(name: str, text: bytes) -> None:
    with path(name), pytest.raises(ValueError):
        b64.decode_standard(text)
