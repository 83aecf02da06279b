"""Break glass through the SDK (sync and async): no token, the token opened only locally."""

from __future__ import annotations

import asyncio

import pytest

from inprocess_server import InProcessServer
from keyquorum.client import GenerateRootStatus, InvalidRequestError
from keyquorum.crypto import kem_box
from keyquorum.crypto.errors import InvalidCiphertext


def test_the_sdk_mints_a_root_token_without_a_token(inprocess_server: InProcessServer) -> None:
    server = inprocess_server
    private_pem, public_pem = kem_box.generate()
    with server.sdk(None) as kq:  # no token at all
        opened = kq.generate_root_init(public_pem, server.shares[0], ttl="1h")
        assert isinstance(opened, GenerateRootStatus) and opened.nonce
        assert opened.progress == 1 and not opened.complete
        assert kq.generate_root_status().nonce is None  # never in the status
        with pytest.raises(ValueError, match="no token"):
            opened.open_token(private_pem)
        with pytest.raises(InvalidRequestError):
            kq.generate_root_submit("0" * 32, server.shares[1])
        done = kq.generate_root_submit(opened.nonce, server.shares[1])
    assert done.complete and done.accessor and done.encoded_token
    assert "encoded_token" not in repr(done) and done.encoded_token not in repr(done)
    with pytest.raises(InvalidCiphertext):
        done.open_token(kem_box.generate()[0])
    token = done.open_token(private_pem)
    with server.sdk(token) as kq:
        me = kq.token_self()
    assert me.accessor == done.accessor and list(me.policies) == ["root"]


def test_the_async_sdk_cancels_with_the_nonce(inprocess_server: InProcessServer) -> None:
    server = inprocess_server
    _, public_pem = kem_box.generate()

    async def scenario() -> GenerateRootStatus:
        async with server.async_sdk(None) as kq:
            opened = await kq.generate_root_init(public_pem, server.shares[2])
            assert opened.nonce is not None
            return await kq.generate_root_cancel(opened.nonce)

    cancelled = asyncio.run(scenario())
    assert cancelled.cancelled and not cancelled.started
