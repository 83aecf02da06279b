"""A transit mount can never shadow a native route: every first path segment the
native API answers under ``/v1/`` is a reserved mount name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keyquorum.transit.mounts import RESERVED, parse_mounts

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def _native_first_segments() -> set[str]:
    paths = json.loads(DOCUMENT.read_text(encoding="utf-8"))["paths"]
    return {path.split("/")[2] for path in paths if path.startswith("/v1/")}


def test_every_native_first_segment_is_reserved() -> None:
    segments = _native_first_segments()
    assert segments, "the OpenAPI document lists no /v1/ routes"
    assert segments <= RESERVED, f"mountable native paths: {sorted(segments - RESERVED)}"


@pytest.mark.parametrize("name", sorted(_native_first_segments()))
def test_a_mount_named_after_a_native_path_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="not a system path"):
        parse_mounts({name: ""})
