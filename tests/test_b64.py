"""The SIMD base64 of the crypto hot paths is never looser than CPython's strict mode.

``keyquorum.b64`` replaced ``binascii.a2b_base64(..., strict_mode=True)`` on every
crypto item (request fields, the ``kq1:`` text form). A decoder that accepted
more would give one ciphertext several text forms or let junk through; these
properties hold it to the old rules on arbitrary input, and to the same bytes
on every valid one.
"""

from __future__ import annotations

import base64
import binascii

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyquorum import b64

# The standard and URL alphabets, padding, whitespace and a non-ASCII byte: the
# characters where a lax decoder would differ.
CHARACTERS = b"ABCDab09+/-_= \n\x80"
NEAR_ALPHABET = st.binary(max_size=24).map(
    lambda raw: bytes(CHARACTERS[c % len(CHARACTERS)] for c in raw))


def strict(data: bytes) -> bytes | None:
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except binascii.Error:
        return None


def ours(data: bytes) -> bytes | None:
    try:
        return b64.decode_standard(data)
    except ValueError:
        return None


@given(NEAR_ALPHABET)
def test_standard_decoding_accepts_nothing_strict_mode_refuses(data: bytes) -> None:
    decoded = ours(data)
    if decoded is not None:
        assert strict(data) == decoded


@given(st.binary(max_size=2048))
def test_every_encoding_round_trips_in_both_alphabets(raw: bytes) -> None:
    assert b64.decode_standard(b64.encode_standard(raw).encode()) == raw
    assert b64.encode_standard(raw) == base64.b64encode(raw).decode()
    assert b64.decode_url(b64.encode_url(raw)) == raw
    assert b64.encode_url(raw) == base64.urlsafe_b64encode(raw)


@pytest.mark.parametrize("text", [b"YQ", b"YQ=", b"Y Q==", b"YQ==\n", b"YQ==YQ==", b"=YWJj",
                                  b"YW=j", b"ab-_", b"\x80AAA"])
def test_malformed_standard_base64_is_refused(text: bytes) -> None:
    with pytest.raises(ValueError):
        b64.decode_standard(text)
