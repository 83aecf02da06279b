"""Every way of damaging a stream is refused, and no unauthenticated byte gets out.

Each case is checked twice: decrypting to a file (the destination keeps its old
contents and no temporary file is left behind) and decrypting to a pipe-like
sink (exactly the segments before the damaged one were released, each of them
authenticated; never a byte of the damaged one or after it), with one thread
and with two.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from envelope.envelope_fakes import FakeKeyService
from keyquorum.client import ForbiddenError
from keyquorum.crypto.errors import InvalidCiphertext
from keyquorum.envelope import (
    DataKeyCache,
    EnvelopeHeader,
    InvalidEnvelopeError,
    NoUsableKeyError,
    WrappedKey,
    decrypt_file,
    decrypt_stream,
    encrypt_stream,
    read_header,
)

SEG = 64
CONTEXT = {"tenant": "acme", "purpose": "backup"}
DATA = os.urandom(5 * SEG + 10)  # five full segments and a short last one
EXACT = os.urandom(5 * SEG)  # five full segments, the last one full


def split(stream: bytes) -> tuple[bytes, list[bytes]]:
    """The header's bytes and each sealed segment's bytes."""
    header_size = len(read_header(io.BytesIO(stream)).encode())
    body = stream[header_size:]
    step = SEG + 16
    return stream[:header_size], [body[i:i + step] for i in range(0, len(body), step)]


def sealed(keys: FakeKeyService, data: bytes = DATA, key_names: tuple[str, ...] = (
        "app/primary",), cache: DataKeyCache | None = None) -> bytes:
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(data), out, keys=list(key_names), context=CONTEXT, client=keys,
                   segment_size=SEG, cache=cache, threads=0)
    return out.getvalue()


@pytest.fixture
def refused(keys: FakeKeyService, tmp_path: Path) -> Callable[..., None]:
    """``refused(stream, Error, released=N)``: both ways of decrypting fail the same way."""

    def check(stream: bytes, error: type[Exception], released: int, *, data: bytes = DATA,
              context: dict[str, str] | None = None, client: FakeKeyService | None = None
              ) -> None:
        context = CONTEXT if context is None else context
        client = client or keys
        source, target = tmp_path / "damaged.kqs", tmp_path / "restored.bin"
        source.write_bytes(stream)
        target.write_bytes(b"what was there before")
        with pytest.raises(error) as caught:
            decrypt_file(source, target, context=context, client=client)
        assert target.read_bytes() == b"what was there before"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["damaged.kqs", "restored.bin"]
        if error is InvalidEnvelopeError:  # one vague message, whatever the damage
            assert str(caught.value) == str(InvalidEnvelopeError())
            assert isinstance(caught.value, InvalidCiphertext)
        for threads in (0, 2):
            sink = io.BytesIO()
            with pytest.raises(error):
                decrypt_stream(io.BytesIO(stream), sink, context=context, client=client,
                               threads=threads)
            assert sink.getvalue() == data[:released * SEG], f"threads={threads}"

    return check


def test_the_undamaged_stream_decrypts(keys) -> None:
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(sealed(keys)), out, context=CONTEXT, client=keys)
    assert out.getvalue() == DATA


# --- truncation ---------------------------------------------------------------------


def test_truncation_at_a_segment_boundary(keys, refused) -> None:
    header, segments = split(sealed(keys))
    refused(header + b"".join(segments[:-1]), InvalidEnvelopeError, released=4)


def test_truncation_at_a_boundary_when_the_last_segment_was_full(keys, refused) -> None:
    header, segments = split(sealed(keys, EXACT))
    refused(header + b"".join(segments[:-1]), InvalidEnvelopeError, released=3, data=EXACT)


def test_truncation_inside_a_segment(keys, refused) -> None:
    stream = sealed(keys)
    refused(stream[:-1], InvalidEnvelopeError, released=5)


def test_truncation_to_the_bare_header(keys, refused) -> None:
    header, _ = split(sealed(keys))
    refused(header, InvalidEnvelopeError, released=0)


def test_truncation_inside_the_header(keys, refused) -> None:
    header, _ = split(sealed(keys))
    for cut in (0, 3, 10, len(header) // 2, len(header) - 1):
        refused(header[:cut], InvalidEnvelopeError, released=0)


# --- extension ----------------------------------------------------------------------


def test_extension_by_one_byte(keys, refused) -> None:
    refused(sealed(keys) + b"\x00", InvalidEnvelopeError, released=5)


def test_extension_by_a_copy_of_the_last_segment(keys, refused) -> None:
    header, segments = split(sealed(keys, EXACT))
    refused(header + b"".join(segments) + segments[-1], InvalidEnvelopeError, released=4,
            data=EXACT)


def test_extension_by_a_segment_of_another_stream(keys, refused) -> None:
    header, segments = split(sealed(keys, EXACT))
    _, other = split(sealed(keys, EXACT))
    refused(header + b"".join(segments) + other[0], InvalidEnvelopeError, released=4,
            data=EXACT)


# --- reordering and splicing --------------------------------------------------------


def test_two_segments_swapped(keys, refused) -> None:
    header, s = split(sealed(keys))
    refused(header + s[0] + s[2] + s[1] + b"".join(s[3:]), InvalidEnvelopeError, released=1)


def test_a_segment_dropped_from_the_middle(keys, refused) -> None:
    header, s = split(sealed(keys))
    refused(header + s[0] + b"".join(s[2:]), InvalidEnvelopeError, released=1)


def test_a_segment_spliced_in_from_a_stream_under_the_same_data_key(keys, refused) -> None:
    with DataKeyCache(max_age=60) as cache:  # both streams get the very same data key
        first, second = sealed(keys, cache=cache), sealed(keys, cache=cache)
    assert read_header(io.BytesIO(first)).wrapped_keys == read_header(
        io.BytesIO(second)).wrapped_keys
    header, s = split(first)
    _, t = split(second)
    refused(header + s[0] + s[1] + t[2] + b"".join(s[3:]), InvalidEnvelopeError, released=2)


def test_another_streams_header_on_these_segments(keys, refused) -> None:
    with DataKeyCache(max_age=60) as cache:
        first, second = sealed(keys, cache=cache), sealed(keys, cache=cache)
    _, s = split(first)
    other_header, _ = split(second)
    refused(other_header + b"".join(s), InvalidEnvelopeError, released=0)


# --- header edits -------------------------------------------------------------------


def _field_offsets(stream: bytes) -> dict[str, int]:
    """Where each header field starts (for a one-key header)."""
    header = read_header(io.BytesIO(stream))
    context_end = 14 + len(header.context)
    name_at = context_end + 2
    wrapped_at = name_at + len(header.wrapped_keys[0].key) + 2
    salt_at = wrapped_at + len(header.wrapped_keys[0].ciphertext)
    return {"magic": 0, "version": 4, "algorithm": 5, "segment size": 9,
            "context length": 13, "context": 16, "key count": context_end,
            "key name": name_at, "wrapped key length": wrapped_at - 1,
            "salt": salt_at, "nonce prefix": salt_at + 32, "commitment": salt_at + 39}


@pytest.mark.parametrize("field", [
    "magic", "version", "algorithm", "segment size", "context length", "context", "key count",
    "salt", "nonce prefix", "commitment"])
def test_each_header_field_edited(keys, refused, field: str) -> None:
    stream = bytearray(sealed(keys))
    stream[_field_offsets(bytes(stream))[field]] ^= 0x01
    refused(bytes(stream), InvalidEnvelopeError, released=0)


def test_segment_size_changed_to_another_valid_size(keys, refused) -> None:
    stream = bytearray(sealed(keys))
    stream[6:10] = struct.pack(">I", 2 * SEG)
    refused(bytes(stream), InvalidEnvelopeError, released=0)


def test_wrapped_key_length_edited_mangles_the_copy(keys, refused) -> None:
    stream = bytearray(sealed(keys))
    stream[_field_offsets(bytes(stream))["wrapped key length"]] -= 1  # one character short
    refused(bytes(stream), NoUsableKeyError, released=0)


def test_key_name_edited_finds_no_key(keys, refused) -> None:
    stream = bytearray(sealed(keys))
    stream[_field_offsets(bytes(stream))["key name"]] ^= 0x01
    refused(bytes(stream), NoUsableKeyError, released=0)


def test_wrapped_key_edited_does_not_open(keys, refused) -> None:
    stream = bytearray(sealed(keys))
    offsets = _field_offsets(bytes(stream))
    stream[offsets["salt"] - 10] ^= 0x01  # inside the wrapped key's base64 text
    refused(bytes(stream), NoUsableKeyError, released=0)


def test_an_edited_first_copy_is_not_repaired_by_an_intact_second_copy(keys, refused) -> None:
    stream = sealed(keys, key_names=("app/primary", "app/dr"))
    header = read_header(io.BytesIO(stream))
    damaged = header.wrapped_keys[0].ciphertext[:-2] + "AA"
    edited = EnvelopeHeader(header.segment_size, header.context,
                            (WrappedKey("app/primary", damaged), header.wrapped_keys[1]),
                            header.salt, header.nonce_prefix, header.commitment)
    refused(edited.encode() + stream[len(header.encode()):], InvalidEnvelopeError, released=0)


# --- wrong context, wrong key -------------------------------------------------------


def test_wrong_context(keys, refused) -> None:
    for context in ({}, {"tenant": "acme"}, {**CONTEXT, "purpose": "other"}):
        refused(sealed(keys), InvalidEnvelopeError, released=0, context=context)
    assert keys.calls["decrypt"] == 0  # refused before any key was unwrapped


def test_wrong_data_key_fails_the_commitment(keys, refused) -> None:
    """A valid copy of another data key, under the same key and context, swapped in."""
    stream = sealed(keys)
    header = read_header(io.BytesIO(stream))
    foreign = keys.datakey("app/primary", context=CONTEXT).ciphertext
    edited = EnvelopeHeader(header.segment_size, header.context,
                            (WrappedKey("app/primary", foreign),), header.salt,
                            header.nonce_prefix, header.commitment)
    refused(edited.encode() + stream[len(header.encode()):], InvalidEnvelopeError, released=0)


def test_a_caller_without_access_to_any_key(keys, refused) -> None:
    stream = sealed(keys, key_names=("app/primary", "app/dr"))
    keys.forbidden = {"app/primary", "app/dr"}
    refused(stream, NoUsableKeyError, released=0)
    with pytest.raises(NoUsableKeyError) as caught:
        decrypt_stream(io.BytesIO(stream), io.BytesIO(), context=CONTEXT, client=keys)
    assert [(name, type(e)) for name, e in caught.value.errors] == [
        ("app/primary", ForbiddenError), ("app/dr", ForbiddenError)]
    assert caught.value.code == "no_usable_key"


def test_a_key_service_that_never_made_the_keys(refused) -> None:
    stranger = FakeKeyService()  # same key names, different key material
    refused(sealed(FakeKeyService()), NoUsableKeyError, released=0, client=stranger)
