"""Init's answer is sent once, then its secrets are overwritten in memory (F10)."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from keyquorum.api import secret_answer
from keyquorum.api.secret_answer import SecretAnswer, secrets_of_init
from keyquorum.crypto.wipe import unsafe_wipe_bytes


def _init_answer() -> dict[str, Any]:
    return {"shares": [f"kqs1-0{i}-{os.urandom(26).hex()}" for i in (1, 2, 3)],
            "root_token": f"kq_{os.urandom(22).hex()}", "threshold": 2}


@pytest.mark.anyio
async def test_the_answer_is_sent_whole_then_its_secrets_and_body_are_wiped(
        monkeypatch: pytest.MonkeyPatch) -> None:
    answer = _init_answer()
    expected = json.dumps(answer, separators=(",", ":")).encode()
    secrets = secrets_of_init(answer)
    assert len(secrets) == 4
    response = SecretAnswer(answer, secrets)
    assert all(set(text) == {"\0"} for text in secrets)  # the body holds the only copy
    sent: list[bytes] = []
    wiped: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            sent.append(bytes(bytearray(message["body"])))  # written out: a copy

    def wipe_and_look(data: bytes) -> None:  # (holding the body would stop the wipe)
        unsafe_wipe_bytes(data)
        wiped.append(bytes(data))

    monkeypatch.setattr(secret_answer, "unsafe_wipe_bytes", wipe_and_look)
    await response({"type": "http"}, None, send)
    assert sent == [expected]
    assert wiped == [bytes(len(expected))]  # nobody else held the body: overwritten


@pytest.mark.anyio
async def test_a_body_the_transport_still_holds_is_left_alone() -> None:
    answer = _init_answer()
    response = SecretAnswer(answer, secrets_of_init(answer))
    queued: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            queued.append(message["body"])  # not written yet: the same object, kept

    await response({"type": "http"}, None, send)
    assert json.loads(queued[0])["threshold"] == 2  # still whole, to be written out
