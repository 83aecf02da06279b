"""The SDK's orphan tokens and revocation previews, sync and async, against the real app."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from keyquorum.client import ForbiddenError, RevokedCredential, TokenRevocation


def test_a_dry_run_lists_the_lineage_and_the_revocation_takes_exactly_it(
        shared_inprocess) -> None:
    tag = uuid.uuid4().hex[:6]
    with shared_inprocess.sdk(shared_inprocess.root_token) as kq:
        parent = kq.create_token(["operator"], name=f"parent-{tag}")
        orphan = kq.create_token(["operator"], name=f"orphan-{tag}", orphan=True)
        assert (parent.orphan, orphan.orphan) == (False, True)
        with shared_inprocess.sdk(parent.token) as operator:
            child = operator.create_token(["operator"], name=f"child-{tag}")
            with pytest.raises(ForbiddenError):  # not root: no orphans (review F13)
                operator.create_token(["operator"], orphan=True)
        with shared_inprocess.sdk(orphan.token) as survivor:
            assert survivor.token_self().orphan is True

        preview = kq.revoke_token(parent.accessor, dry_run=True)
        assert preview == TokenRevocation(
            accessor=parent.accessor, revoked=False, dry_run=True,
            also_revoked=(child.accessor,), also_revoked_details=(RevokedCredential(
                accessor=child.accessor, kind="token", name=f"child-{tag}",
                policies=("operator",)),))
        with shared_inprocess.sdk(child.token) as still:
            assert still.token_self().orphan is False  # the preview revoked nothing
        done = kq.revoke_token(parent.accessor)
        assert (done.revoked, done.dry_run) == (True, False)
        assert done.also_revoked_details == preview.also_revoked_details
        kq.revoke_token(orphan.accessor)


def test_the_async_client_previews_and_mints_orphans_like_the_sync_one(
        shared_inprocess) -> None:
    async def scenario() -> None:
        async with shared_inprocess.async_sdk(shared_inprocess.root_token) as kq:
            orphan = await kq.create_token(["operator"], orphan=True)
            assert orphan.orphan is True
            preview = await kq.revoke_token(orphan.accessor, dry_run=True)
            assert (preview.revoked, preview.dry_run, preview.also_revoked) == (
                False, True, ())
            done = await kq.revoke_token(orphan.accessor)
            assert (done.accessor, done.revoked) == (orphan.accessor, True)

    asyncio.run(scenario())
