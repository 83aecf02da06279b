"""The asynchronous client against a real server: the same answers as the sync one."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from keyquorum.client import (
    DecryptResult,
    EncryptItem,
    InvalidCiphertextError,
    Key,
    KeyquorumAPIError,
    NotFoundError,
    UnauthenticatedError,
)


def test_async_round_trip_batch_pages_and_errors(shared_inprocess) -> None:
    prefix = f"async/{uuid.uuid4().hex[:8]}"

    async def scenario() -> None:
        async with shared_inprocess.async_sdk(shared_inprocess.root_token) as kq:
            assert not (await kq.health()).sealed
            created = await asyncio.gather(*(kq.create_key(f"{prefix}/k{i}", "aes-256-gcm")
                                             for i in range(3)))
            assert all(isinstance(k, Key) for k in created)
            name = created[0].name

            sealed = await kq.encrypt(name, b"async secret", {"mode": "async"})
            opened = await kq.decrypt(sealed.ciphertext, {"mode": "async"})
            assert isinstance(opened, DecryptResult) and opened.plaintext == b"async secret"
            with pytest.raises(InvalidCiphertextError):
                await kq.decrypt(sealed.ciphertext, {"mode": "sync"})

            results = await kq.encrypt_batch(name, [b"a", EncryptItem(b"b", {"x": "y"})])
            assert not any(isinstance(r, KeyquorumAPIError) for r in results)

            names = [k.name async for k in kq.iter_keys(prefix=prefix + "/", page_size=2)]
            assert sorted(names) == sorted(k.name for k in created)
            assert len(await kq.random(16)) == 16
            assert (await kq.rotate_key(name)).primary_version == 2
            records = [r async for r in kq.iter_audit(key=name, page_size=2)]
            assert "encrypt" in {r.operation for r in records}
            with pytest.raises(NotFoundError):
                await kq.get_key(prefix + "/missing")

        async with shared_inprocess.async_sdk("wrong-token") as stranger:
            with pytest.raises(UnauthenticatedError):
                await stranger.token_self()

    asyncio.run(scenario())
