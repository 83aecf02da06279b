"""An unexpected failure is answered by the error contract and logged without its text.

Starlette raises an unexpected error again after its handler answered, so that the
server logs it, and uvicorn logs it with its message: a database driver's message
carries the statement's bound parameters. The front logs where it happened instead,
and answers 500 ``internal`` if nothing was answered yet.
"""

from __future__ import annotations

import logging
import uuid

import pytest

from inprocess_server import InProcessServer
from keyquorum.api import routes_keys
from keyquorum.failure_log import describe_failure

SECRET = "s3cr3t-bound-parameter"


def _raise_with_secret(*_args: object) -> str:
    raise RuntimeError(f"statement failed [parameters: ({SECRET!r},)]")


def test_an_unexpected_failure_answers_500_internal_and_logs_where_not_what(
        inprocess_server: InProcessServer, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(routes_keys, "_name_for", _raise_with_secret)
    http = inprocess_server.client(inprocess_server.root_token)
    with caplog.at_level(logging.ERROR):
        answer = http.get(f"/v1/keys/{uuid.uuid4()}")  # a key id: looked up before the runner
    assert answer.status_code == 500, answer.text
    assert answer.json()["error"]["code"] == "internal"
    assert answer.headers["cache-control"] == "no-store"
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "RuntimeError at test_unexpected_failures.py" in logged
    assert "_raise_with_secret" in logged
    assert SECRET not in logged
    assert not any(record.exc_info for record in caplog.records)  # no traceback text either
    assert http.get("/v1/keys").status_code == 200  # the server serves on


def test_a_failure_is_described_by_kind_and_frames_through_its_causes() -> None:
    def inner() -> None:
        raise ValueError(SECRET)

    def outer() -> None:
        try:
            inner()
        except ValueError as exc:
            raise KeyError(SECRET) from exc

    with pytest.raises(KeyError) as caught:
        outer()
    described = describe_failure(caught.value)
    assert described.startswith("KeyError at test_unexpected_failures.py:")
    assert "in outer" in described
    assert "from ValueError at test_unexpected_failures.py:" in described
    assert "in inner" in described
    assert SECRET not in described
