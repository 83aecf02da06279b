"""parse_duration: the one spelling of durations across the API (lives in keyquorum.durations)."""

from __future__ import annotations

import pytest

from keyquorum.durations import parse_duration
from keyquorum.errors import InvalidRequest


@pytest.mark.parametrize(("value", "seconds"), [
    (None, None),
    (1, 1.0),
    (2.5, 2.5),
    ("3600", 3600.0),
    ("0.5", 0.5),
    ("45s", 45.0),
    ("30m", 1800.0),
    ("12h", 43200.0),
    ("90d", 90 * 86400.0),
    ("1h30m", 5400.0),
    ("1d2h3m4s", 93784.0),
    (" 15m ", 900.0),
])
def test_accepted_durations(value: object, seconds: float | None) -> None:
    assert parse_duration(value) == seconds  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [
    0, -1, "0", "0s", "", "  ", "h", "1x", "30m1h", "1h1h", "1.5h", "-5m", "1 h",
    float("nan"), float("inf"), True, [], {}, "1e3", 200 * 365 * 86400,
])
def test_rejected_durations_state_the_rule(value: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_duration(value, field="ttl")  # type: ignore[arg-type]
    assert caught.value.message.startswith("ttl must be")
