"""The envelope against a real keyquorum server: data keys, recovery keys, policies, states."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from keyquorum.client import Client, ForbiddenError, KeyStateError, SealedError
from keyquorum.envelope import (
    DataKeyCache,
    InvalidEnvelopeError,
    NoUsableKeyError,
    decrypt_file,
    decrypt_range,
    decrypt_stream,
    encrypt_file,
    encrypt_stream,
    read_header,
)

CONTEXT = {"tenant": "acme", "dataset": "orders"}


@pytest.fixture
def kq(shared_inprocess) -> Iterator[Client]:
    with shared_inprocess.sdk(shared_inprocess.root_token) as client:
        yield client


@pytest.fixture
def key_pair(kq: Client) -> tuple[str, str]:
    """A primary and a disaster-recovery key no other test uses."""
    tag = uuid.uuid4().hex[:8]
    primary, recovery = f"env/primary-{tag}", f"env/dr-{tag}"
    kq.create_key(primary, "aes-256-gcm")
    kq.create_key(recovery, "chacha20-poly1305")
    return primary, recovery


def seal(kq: Client, data: bytes, keys: list[str], **options) -> bytes:
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(data), out, keys=keys, context=CONTEXT, client=kq,
                   segment_size=4096, **options)
    return out.getvalue()


def test_round_trip_through_the_server_with_a_recovery_copy(kq, key_pair) -> None:
    data = os.urandom(3 * 4096 + 17)
    stream = seal(kq, data, list(key_pair))
    header = read_header(io.BytesIO(stream))
    assert header.key_names == key_pair
    assert all(w.ciphertext.startswith("kq1:") for w in header.wrapped_keys)
    out = io.BytesIO()
    result = decrypt_stream(io.BytesIO(stream), out, context=CONTEXT, client=kq)
    assert out.getvalue() == data and result.key == key_pair[0]


def test_the_server_binds_the_context_to_the_wrapped_keys(kq, key_pair) -> None:
    stream = seal(kq, b"payload", list(key_pair))
    copy = read_header(io.BytesIO(stream)).wrapped_keys[0]
    assert kq.decrypt(copy.ciphertext, CONTEXT, key=key_pair[0]).plaintext  # 32 bytes
    with pytest.raises(InvalidEnvelopeError):
        decrypt_stream(io.BytesIO(stream), io.BytesIO(), context={"tenant": "acme"}, client=kq)


def test_a_disabled_primary_falls_back_to_the_recovery_key(kq, key_pair) -> None:
    data = os.urandom(10_000)
    stream = seal(kq, data, list(key_pair))
    kq.disable_key(key_pair[0])
    try:
        out = io.BytesIO()
        result = decrypt_stream(io.BytesIO(stream), out, context=CONTEXT, client=kq)
        assert out.getvalue() == data and result.key == key_pair[1]
        kq.disable_key(key_pair[1])
        with pytest.raises(NoUsableKeyError) as caught:
            decrypt_stream(io.BytesIO(stream), io.BytesIO(), context=CONTEXT, client=kq)
        assert [type(e) for _, e in caught.value.errors] == [KeyStateError, KeyStateError]
    finally:
        kq.enable_key(key_pair[0])
        kq.enable_key(key_pair[1])


def test_a_token_allowed_only_the_recovery_key(shared_inprocess, kq, key_pair) -> None:
    data = os.urandom(5000)
    stream = seal(kq, data, list(key_pair))
    policy = f"env-dr-{uuid.uuid4().hex[:8]}"
    kq.put_policy(policy, [{"keys": key_pair[1], "operations": ["decrypt"]}])
    token = kq.create_token([policy], ttl="10m").token
    with shared_inprocess.sdk(token) as recovery_only:
        out = io.BytesIO()
        result = decrypt_stream(io.BytesIO(stream), out, context=CONTEXT, client=recovery_only)
        assert out.getvalue() == data and result.key == key_pair[1]
        with pytest.raises(ForbiddenError):  # and it cannot make new data keys
            seal(recovery_only, data, list(key_pair))
    nobody = kq.create_token([policy], ttl="10m").token
    kq.put_policy(policy, [{"keys": "nothing/*", "operations": ["decrypt"]}])
    with shared_inprocess.sdk(nobody) as stranger, pytest.raises(NoUsableKeyError) as no:
        decrypt_stream(io.BytesIO(stream), io.BytesIO(), context=CONTEXT, client=stranger)
    assert [e.code for _, e in no.value.errors] == ["forbidden", "forbidden"]


def test_cache_saves_server_calls_and_each_stream_still_opens(kq, key_pair) -> None:
    with DataKeyCache(max_age=60, max_messages=5) as cache:
        streams = [seal(kq, f"record {i}".encode(), [key_pair[0]], cache=cache)
                   for i in range(12)]
        assert cache.stats().fetched == 3
    for i, stream in enumerate(streams):
        out = io.BytesIO()
        decrypt_stream(io.BytesIO(stream), out, context=CONTEXT, client=kq)
        assert out.getvalue() == f"record {i}".encode()


def test_files_and_ranges_through_the_server(kq, key_pair, tmp_path: Path) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(os.urandom(1_000_000))
    encrypt_file(source, tmp_path / "data.kqs", keys=[key_pair[0]], context=CONTEXT, client=kq,
                 segment_size=65536)
    decrypt_file(tmp_path / "data.kqs", tmp_path / "back.bin", context=CONTEXT, client=kq)
    assert (tmp_path / "back.bin").read_bytes() == source.read_bytes()
    with open(tmp_path / "data.kqs", "rb") as handle:
        out = io.BytesIO()
        decrypt_range(handle, out, 300_000, 400_000, context=CONTEXT, client=kq)
    assert out.getvalue() == source.read_bytes()[300_000:400_000]


def test_a_sealed_server_is_reported_as_such(inprocess_server) -> None:
    with inprocess_server.sdk(inprocess_server.root_token) as client:
        client.create_key("env/sealed", "aes-256-gcm")
        stream = seal(client, b"x", ["env/sealed"])
        client.seal()
        with pytest.raises(SealedError):  # not skipped like a missing key: nothing would work
            decrypt_stream(io.BytesIO(stream), io.BytesIO(), context=CONTEXT, client=client)
        with pytest.raises(SealedError):
            seal(client, b"x", ["env/sealed"])
