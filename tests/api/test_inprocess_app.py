"""The in-process app fixtures serve the real pipeline: each request is audited before its
answer leaves, through the async client (whose lifespan the fixture runs) and the sync
one (Starlette's test client runs it), and the test clock moves the service's time."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from keyquorum.clock import OffsetClock
from keyquorum.service.core import Core

if TYPE_CHECKING:
    from starlette.testclient import TestClient

ENCRYPT = {"plaintext": "aGk="}


def last_record(core: Core) -> tuple[str, str | None, str]:
    records, _ = core.audit.query(limit=1)
    return records[0].operation, records[0].key, records[0].outcome


@pytest.mark.anyio
async def test_the_async_client_is_answered_only_after_the_audit_record_is_stored(
        api: httpx.AsyncClient, core: Core) -> None:
    assert (await api.post("/v1/keys", json={"name": "app/k", "spec": "aes-256-gcm"})
            ).status_code == 200
    assert last_record(core) == ("create", "app/k", "ok")

    assert (await api.post("/v1/keys/app/k/encrypt", json=ENCRYPT)).status_code == 200
    assert last_record(core) == ("encrypt", "app/k", "ok")

    assert (await api.post("/v1/keys/app/none/encrypt", json=ENCRYPT)).status_code == 404
    assert last_record(core) == ("encrypt", "app/none", "error")


def test_the_sync_client_is_answered_only_after_the_audit_record_is_stored(
        api_sync: TestClient, core: Core) -> None:
    assert api_sync.post("/v1/keys", json={"name": "app/k", "spec": "aes-256-gcm"}
                         ).status_code == 200
    assert last_record(core) == ("create", "app/k", "ok")

    assert api_sync.post("/v1/keys/app/k/encrypt", json=ENCRYPT).status_code == 200
    assert last_record(core) == ("encrypt", "app/k", "ok")


@pytest.mark.anyio
async def test_the_test_clock_moves_the_services_time(api: httpx.AsyncClient,
                                                      clock: OffsetClock) -> None:
    made = (await api.post("/v1/keys", json={"name": "app/k", "spec": "aes-256-gcm",
                                             "rotation_period": 86400})).json()

    clock.advance(2 * 86400)
    await api.post("/v1/keys/app/k/encrypt", json=ENCRYPT)

    used = (await api.get("/v1/keys/app/k")).json()["last_used_at"]
    assert used[:10] > made["created_at"][:10]
