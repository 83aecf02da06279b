"""Review F14 with ``--workers 2``: the supervisor holds the unseal progress and its nonce,
so a reset without the nonce is refused whichever worker takes it, and kept progress is
seen by both."""

from __future__ import annotations

import httpx
import pytest

from kq_support import ServerProcess

pytestmark = pytest.mark.server


def fresh(server: ServerProcess, body: dict) -> httpx.Response:
    """One request on a new connection (so either worker may take it)."""
    return httpx.post(f"{server.addr}/v1/sys/unseal", json=body, timeout=30)


def test_reset_without_the_nonce_is_refused_by_every_worker(two_workers: ServerProcess
                                                            ) -> None:
    server = two_workers
    server.init()
    first = fresh(server, {"share": server.shares[0]})
    assert first.status_code == 200, first.text
    nonce = first.json()["nonce"]
    assert fresh(server, {"reset": True, "nonce": nonce}).json()["progress"] == 0
    second = fresh(server, {"share": server.shares[1]}).json()
    assert second["progress"] == 1 and second["nonce"] != nonce
    for _ in range(6):  # several connections: both workers answer, none discards it
        refused = fresh(server, {"reset": True, "nonce": nonce})  # the old round's
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
        assert fresh(server, {"reset": True}).status_code == 403
    # Kept: one more share completes the quorum.
    assert fresh(server, {"share": server.shares[2]}).json()["sealed"] is False
