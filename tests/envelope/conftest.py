"""Fixtures for envelope tests: an in-process key service and helpers to seal and open bytes."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping

import pytest

from envelope.envelope_fakes import FakeKeyService
from keyquorum.envelope import EnvelopeResult, decrypt_stream, encrypt_stream

CONTEXT = {"tenant": "acme", "purpose": "backup"}


@pytest.fixture
def keys() -> FakeKeyService:
    return FakeKeyService()


@pytest.fixture
def seal(keys: FakeKeyService) -> Callable[..., bytes]:
    """``seal(data, segment_size=..., threads=..., keys=[...], context=...)`` → stream bytes."""

    def run(data: bytes, *, segment_size: int = 64, threads: int = 0,
            key_names: tuple[str, ...] = ("app/primary",),
            context: Mapping[str, str] | None = None) -> bytes:
        out = io.BytesIO()
        encrypt_stream(io.BytesIO(data), out, keys=list(key_names),
                       context=CONTEXT if context is None else context, client=keys,
                       segment_size=segment_size, threads=threads)
        return out.getvalue()

    return run


@pytest.fixture
def unseal(keys: FakeKeyService) -> Callable[..., tuple[bytes, EnvelopeResult]]:
    """``unseal(stream, threads=..., context=...)`` → ``(plaintext, result)``."""

    def run(stream: bytes, *, threads: int = 0,
            context: Mapping[str, str] | None = None) -> tuple[bytes, EnvelopeResult]:
        out = io.BytesIO()
        result = decrypt_stream(io.BytesIO(stream), out,
                                context=CONTEXT if context is None else context, client=keys,
                                threads=threads)
        return out.getvalue(), result

    return run
