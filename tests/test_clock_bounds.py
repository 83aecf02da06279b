"""The test clock (``--unsafe-test-clock``) moves forward only, and never so far that
dates stop formatting (review F8: an advance of 1e12 s made GET /v1/keys/{name} a 500)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from keyquorum.clock import MAX_TEST_OFFSET, OffsetClock, rfc3339
from keyquorum.errors import InvalidRequest
from kq_inprocess import inprocess_app

YEAR = 365 * 86400


@pytest.mark.parametrize("seconds", [math.inf, -math.inf, math.nan, -1, -1e-9])
def test_clock_refuses_steps_that_are_not_a_finite_move_forward(seconds: float) -> None:
    clock = OffsetClock()
    with pytest.raises(InvalidRequest, match="forward only, by a finite number"):
        clock.advance(seconds)
    assert abs(clock.now() - OffsetClock().now()) < 5  # not moved


@pytest.mark.parametrize("seconds", [1e12, 1e300, 101 * YEAR])
def test_clock_refuses_a_jump_past_a_hundred_years(seconds: float) -> None:
    clock = OffsetClock()
    with pytest.raises(InvalidRequest, match="at most 100 years ahead"):
        clock.advance(seconds)
    assert abs(clock.now() - OffsetClock().now()) < 5


def test_small_steps_add_up_to_the_same_hundred_year_limit() -> None:
    clock = OffsetClock()
    for _ in range(99):
        clock.advance(YEAR)
    with pytest.raises(InvalidRequest, match="at most 100 years ahead"):
        clock.advance(2 * YEAR)
    clock.advance(MAX_TEST_OFFSET - 99 * YEAR)  # exactly to the limit is allowed
    with pytest.raises(InvalidRequest):
        clock.advance(1)
    # Dates computed from the furthest clock, plus the longest duration the API takes
    # (100 years), still format as RFC 3339.
    assert rfc3339(clock.now() + 100 * YEAR) is not None


def test_advancing_the_clock_by_one_day_still_works() -> None:
    clock = OffsetClock()
    before = clock.now()
    clock.advance(86400)
    assert clock.now() - before >= 86400


def test_clock_route_answers_400_for_a_huge_jump_and_keys_still_read(tmp_path: Path) -> None:
    with inprocess_app(tmp_path / "data", test_clock=True) as kq:
        assert kq.http.post("/v1/keys", json={"name": "clock/k", "spec": "aes-256-gcm",
                                              "rotation_period": "90d"}).status_code == 200
        for seconds in (1e12, 1e300, 101 * YEAR):
            answer = kq.http.post("/v1/sys/unsafe/clock", json={"advance_seconds": seconds})
            assert answer.status_code == 400, answer.text
            assert answer.json()["error"]["code"] == "invalid_request"
            assert "100 years" in answer.json()["error"]["message"]
        key = kq.http.get("/v1/keys/clock/k")
        assert key.status_code == 200, key.text
        # A sane step is still taken, and the key still reads afterwards.
        moved = kq.http.post("/v1/sys/unsafe/clock", json={"advance_seconds": 10 * YEAR})
        assert moved.status_code == 200, moved.text
        assert kq.http.get("/v1/keys/clock/k").status_code == 200
