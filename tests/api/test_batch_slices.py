"""Batches share the event loop by CPU time: a cheap batch stays on it, a long one moves on.

A batch runs on the event loop until it has used ``LOOP_SLICE`` of the loop thread's
CPU time, then the rest of its items go to a worker thread in one hop; items that
would block (storage, RSA) go there at once. Wall time does not count: a loop
preempted by another process has not spent its slice (under load a wall-clock slice
sent ever more cheap items to threads, where they cost more).
"""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import pytest

from keyquorum.api import batches
from keyquorum.api import runner as pipeline

pytestmark = [pytest.mark.anyio, pytest.mark.postgresql]


def test_a_batch_preempted_off_cpu_has_not_spent_its_slice() -> None:
    batch = batches.Batch(loop_deadline=time.perf_counter() - 1.0,  # wall clock: long past
                            cpu_started=time.thread_time())
    time.sleep(0.02)  # off the CPU, as when another process has the core
    assert not batch.slice_spent()
    assert batch.loop_deadline > time.perf_counter()  # the deadline moved to the CPU left


def test_a_batch_that_used_the_cpu_has_spent_its_slice() -> None:
    started = time.thread_time()
    while time.thread_time() - started < batches.LOOP_SLICE:
        pass  # burn the slice on this thread's CPU
    batch = batches.Batch(loop_deadline=time.perf_counter(), cpu_started=started)
    assert batch.slice_spent()


async def _encrypt_batch(api: httpx.AsyncClient, items: int) -> list[dict[str, Any]]:
    created = await api.post("/v1/keys", json={"name": "slices/k", "spec": "aes-256-gcm"})
    assert created.status_code == 200, created.text
    body = {"batch": [{"plaintext": base64.b64encode(f"item {n}".encode()).decode()}
                      for n in range(items)]}
    answer = await api.post("/v1/keys/slices/k/encrypt", json=body)
    assert answer.status_code == 200, answer.text
    results: list[dict[str, Any]] = answer.json()["results"]
    return results


async def _decrypted(api: httpx.AsyncClient, results: list[dict[str, Any]]) -> list[bytes]:
    answer = await api.post("/v1/decrypt", json={"batch": [
        {"ciphertext": r["ciphertext"]} for r in results]})
    assert answer.status_code == 200, answer.text
    return [base64.b64decode(r["plaintext"]) for r in answer.json()["results"]]


@pytest.fixture
def spilled(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The item counts of every batch remainder sent to a worker thread, in order."""
    sent: list[int] = []
    original = pipeline.Runner._batch_items

    def counting(self: Any, ctx: Any, route: Any, name: Any, items: list[Any], batch: Any,
                 *, may_block: bool) -> None:
        if may_block:
            sent.append(len(items))
        original(self, ctx, route, name, items, batch, may_block=may_block)

    monkeypatch.setattr(pipeline.Runner, "_batch_items", counting)
    return sent


async def test_a_batch_moved_to_a_thread_midway_answers_every_item_in_order(
        api: httpx.AsyncClient, spilled: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batches, "LOOP_SLICE", 0.0)  # every batch moves on at once
    results = await _encrypt_batch(api, 300)
    assert spilled and spilled[0] <= 300
    assert await _decrypted(api, results) == [f"item {n}".encode() for n in range(300)]


async def test_a_cheap_batch_stays_on_the_loop(
        api: httpx.AsyncClient, spilled: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    await _encrypt_batch(api, 1)  # the key is cached and its usage block reserved
    spilled.clear()
    monkeypatch.setattr(batches, "LOOP_SLICE", 10.0)
    body = {"batch": [{"plaintext": "eA=="}] * 100}
    answer = await api.post("/v1/keys/slices/k/encrypt", json=body)
    assert answer.status_code == 200 and len(answer.json()["results"]) == 100
    assert spilled == []


async def test_batch_items_without_a_context_share_one_decision_items_with_one_are_each_decided(
        api: httpx.AsyncClient, app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    authorizer = app.services.core.authorizer
    decided: list[dict[str, str] | None] = []
    real = authorizer.authorize

    def counting(*args: Any, **kwargs: Any) -> Any:
        decided.append(kwargs.get("context"))
        return real(*args, **kwargs)

    created = await api.post("/v1/keys", json={"name": "slices/auth", "spec": "aes-256-gcm"})
    assert created.status_code == 200, created.text
    monkeypatch.setattr(authorizer, "authorize", counting)
    plain = {"plaintext": base64.b64encode(b"x").decode()}
    answer = await api.post("/v1/keys/slices/auth/encrypt", json={"batch": [
        plain, plain, {**plain, "context": {"t": "1"}}, plain, {**plain, "context": {"t": "2"}},
        plain]})

    assert answer.status_code == 200, answer.text
    assert all("ciphertext" in r for r in answer.json()["results"])
    assert decided == [None, {"t": "1"}, {"t": "2"}]
