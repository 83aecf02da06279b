"""The header's encoding, its bounds, the segment layout, and the package's public face."""

from __future__ import annotations

import io
import struct

import pytest

import keyquorum.envelope as envelope
from keyquorum.client import KeyquorumClientError
from keyquorum.crypto.errors import InvalidCiphertext
from keyquorum.envelope import (
    EnvelopeError,
    EnvelopeHeader,
    EnvelopeUsageError,
    InvalidEnvelopeError,
    NoUsableKeyError,
    WrappedKey,
    encrypt_stream,
    read_header,
)
from keyquorum.envelope import errors as envelope_errors
from keyquorum.envelope._format import (
    MAX_CONTEXT_SIZE,
    MAX_HEADER_SIZE,
    Layout,
    decode_context,
    encode_context,
)
from keyquorum.keys.ciphertext import canonical_context


def header(**changes) -> EnvelopeHeader:
    fields = dict(segment_size=1 << 20, context=canonical_context({"a": "1"}),
                  wrapped_keys=(WrappedKey("app/primary", "kq1:AAAA"),
                                WrappedKey("app/dr", "kq1:BBBBBB")),
                  salt=bytes(range(32)), nonce_prefix=b"\xa0" * 7, commitment=b"\xc0" * 32)
    fields.update(changes)
    return EnvelopeHeader(**fields)  # type: ignore[arg-type]


def test_header_round_trips_and_starts_with_the_fixed_fields() -> None:
    raw = header().encode()
    assert raw[:14] == b"KQST\x01\x01" + struct.pack(">II", 1 << 20, 10)
    parsed = read_header(io.BytesIO(raw + b"segments follow"))
    assert parsed == header()
    assert parsed.key_names == ("app/primary", "app/dr")
    assert parsed.context_map() == {"a": "1"}
    assert "kq1:" not in repr(parsed) and "salt=" not in repr(parsed)


@pytest.mark.parametrize(("offset", "value"), [
    (0, b"X"), (4, b"\x02"), (5, b"\x02"), (6, struct.pack(">I", 15)),
    (6, struct.pack(">I", (64 << 20) + 1)), (10, struct.pack(">I", MAX_CONTEXT_SIZE + 1)),
    (14 + 10, b"\x00"), (14 + 10, b"\x11")])
def test_out_of_bounds_fields_are_refused_before_anything_is_allocated(offset, value) -> None:
    raw = bytearray(header().encode())
    raw[offset:offset + len(value)] = value
    with pytest.raises(InvalidEnvelopeError):
        read_header(io.BytesIO(bytes(raw)))


def test_every_truncated_header_is_refused() -> None:
    raw = header().encode()
    for cut in range(len(raw)):
        with pytest.raises(InvalidEnvelopeError):
            read_header(io.BytesIO(raw[:cut]))


def test_a_non_canonical_context_is_refused() -> None:
    reversed_order = b"\x00\x02" + b"\x00\x01b\x00\x00\x00\x01" + b"2" \
        + b"\x00\x01a\x00\x00\x00\x01" + b"1"
    for bad in (reversed_order, b"\x00\x01\x00\x01a", b"\x00\x00extra", b"\x00",
                b"\x00\x01\x00\x01\xff\x00\x00\x00\x00"):
        with pytest.raises(InvalidEnvelopeError):
            decode_context(bad)
    assert decode_context(canonical_context({"b": "2", "a": "1"})) == {"a": "1", "b": "2"}


@pytest.mark.parametrize(("changes", "rule"), [
    ({"segment_size": 15}, "segment_size"), ({"segment_size": (64 << 20) + 1}, "segment_size"),
    ({"wrapped_keys": ()}, "1 to 16 keys"), ({"wrapped_keys": (WrappedKey("k", "x"),) * 17},
                                              "1 to 16 keys"),
    ({"wrapped_keys": (WrappedKey("k" * 256, "x"),)}, "key names"),
    ({"wrapped_keys": (WrappedKey("k", "x" * 4097),)}, "wrapped keys"),
    ({"salt": b"short"}, "salt"), ({"commitment": b""}, "commitment")])
def test_writers_refuse_headers_readers_would_refuse(changes, rule: str) -> None:
    with pytest.raises(EnvelopeUsageError, match=rule):
        header(**changes).encode()


def test_the_largest_header_stays_within_its_bound() -> None:
    biggest = header(context=b"\x00" * MAX_CONTEXT_SIZE,
                     wrapped_keys=(WrappedKey("k" * 255, "x" * 4096),) * 16)
    assert len(biggest.encode()) == MAX_HEADER_SIZE


def test_context_rules_are_caller_mistakes() -> None:
    with pytest.raises(EnvelopeUsageError, match="strings"):
        encode_context({"a": 1})  # type: ignore[dict-item]
    with pytest.raises(EnvelopeUsageError, match="at most"):
        encode_context({"a": "x" * MAX_CONTEXT_SIZE})


@pytest.mark.parametrize(("plaintext", "segments"), [
    (0, 1), (1, 1), (99, 1), (100, 1), (101, 2), (1000, 10), (1001, 11)])
def test_layout_from_the_file_size(plaintext: int, segments: int) -> None:
    total = 50 + plaintext + segments * 16
    layout = Layout.of(50, 100, total)
    assert (layout.segments, layout.plaintext_size) == (segments, plaintext)
    assert sum(layout.sealed_size(i) for i in range(segments)) == total - 50
    assert layout.offset(segments - 1) + layout.sealed_size(segments - 1) == total


@pytest.mark.parametrize("body", [0, 15, 116 + 15, 116 + 16, 116 * 3 + 16])
def test_sizes_no_writer_produces_are_refused(body: int) -> None:
    with pytest.raises(InvalidEnvelopeError):
        Layout.of(50, 100, 50 + body)


def test_all_is_sorted_unique_and_importable() -> None:
    names = envelope.__all__

    def ruff_order(name: str) -> tuple[int, str]:  # constants, classes, then functions
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert names == sorted(names, key=ruff_order)
    assert len(set(names)) == len(names)
    for name in names:
        assert hasattr(envelope, name), name
    for name in envelope_errors.__all__:
        assert name in names


def test_the_error_tree_and_its_codes() -> None:
    assert issubclass(EnvelopeError, KeyquorumClientError)
    assert issubclass(InvalidEnvelopeError, InvalidCiphertext)
    assert issubclass(EnvelopeUsageError, ValueError)
    assert {InvalidEnvelopeError.code, NoUsableKeyError.code, EnvelopeUsageError.code} == {
        "invalid_ciphertext", "no_usable_key", "invalid_argument"}
    assert str(InvalidEnvelopeError()) == (
        "encrypted stream is invalid, incomplete or does not match the context")


@pytest.mark.parametrize(("options", "rule"), [
    ({"keys": []}, "keys"), ({"keys": "app/primary"}, "keys"),
    ({"keys": ["a", "a"]}, "repeat"), ({"keys": ["a"], "segment_size": 8}, "segment_size"),
    ({"keys": ["a"], "threads": -1}, "threads"), ({"keys": ["a"], "context": {"a": 2}},
                                                  "strings")])
def test_encrypt_argument_mistakes_say_the_rule(keys, options, rule: str) -> None:
    out = io.BytesIO()
    with pytest.raises(EnvelopeUsageError, match=rule):
        encrypt_stream(io.BytesIO(b"data"), out, client=keys, **options)
    assert keys.calls == {"datakey": 0, "encrypt": 0, "decrypt": 0}
    assert out.getvalue() == b""
