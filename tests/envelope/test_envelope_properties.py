"""Properties over random sizes, segment sizes, ranges and damage (small segments: fast)."""

from __future__ import annotations

import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envelope.envelope_fakes import FakeKeyService
from keyquorum.envelope import (
    EnvelopeError,
    decrypt_range,
    decrypt_stream,
    encrypt_stream,
)

KEYS = FakeKeyService()  # shared: hypothesis runs each example without fixtures
CONTEXT = {"k": "v"}
FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def seal(data: bytes, segment_size: int, threads: int = 0) -> bytes:
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(data), out, keys=["app/primary"], context=CONTEXT, client=KEYS,
                   segment_size=segment_size, threads=threads)
    return out.getvalue()


streams = st.tuples(st.binary(max_size=700), st.integers(16, 80), st.integers(0, 2))


@FAST
@given(streams)
def test_every_stream_round_trips(case: tuple[bytes, int, int]) -> None:
    data, segment_size, threads = case
    out = io.BytesIO()
    result = decrypt_stream(io.BytesIO(seal(data, segment_size, threads)), out,
                            context=CONTEXT, client=KEYS, threads=threads)
    assert out.getvalue() == data
    assert result.plaintext_size == len(data)


@FAST
@given(st.binary(max_size=700), st.integers(16, 80), st.integers(0, 800), st.integers(0, 800))
def test_every_range_is_the_slice(data: bytes, segment_size: int, a: int, b: int) -> None:
    start, end = min(a, b), max(a, b)
    out = io.BytesIO()
    decrypt_range(io.BytesIO(seal(data, segment_size)), out, start, end, context=CONTEXT,
                  client=KEYS)
    assert out.getvalue() == data[start:end]


@FAST
@given(st.binary(min_size=1, max_size=500), st.integers(16, 64), st.data())
def test_any_damage_is_refused_and_only_whole_authentic_segments_get_out(
        data: bytes, segment_size: int, draw: st.DataObject) -> None:
    """A flipped bit, a cut or an inserted byte anywhere: an error, and the output so far is
    the plaintext's first k whole segments for some k (never a byte it should not be)."""
    stream = bytearray(seal(data, segment_size))
    kind = draw.draw(st.sampled_from(["flip", "cut", "insert"]))
    at = draw.draw(st.integers(0, len(stream) - 1))
    if kind == "flip":
        stream[at] ^= 1 << draw.draw(st.integers(0, 7))
    elif kind == "cut":
        del stream[at:]
    else:
        stream.insert(at, draw.draw(st.integers(0, 255)))
    threads = draw.draw(st.integers(0, 2))
    out = io.BytesIO()
    try:
        decrypt_stream(io.BytesIO(bytes(stream)), out, context=CONTEXT, client=KEYS,
                       threads=threads)
    except EnvelopeError:
        released = out.getvalue()
        assert len(released) % segment_size == 0
        assert released == data[:len(released)]
        assert len(released) < len(data)  # the last segment never gets out of a damaged stream
    else:
        raise AssertionError(f"{kind} at {at} of {len(stream)} was not detected")
