"""The HTTP limits' settings: defaults, config file fields, and bad values refused at start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from keyquorum.config import Settings, load_config_file
from keyquorum.runtime.http_limits import (
    FD_RESERVE,
    ConnectionTable,
    HttpLimits,
    cap_warning,
    descriptor_budget,
)
from kq_support import free_port


def overlay(tmp_path: Path, fields: dict[str, object]) -> Settings:
    path = tmp_path / "kq.json"
    path.write_text(json.dumps(fields))
    return load_config_file(Settings(data_dir=tmp_path / "d"), path).validate()


def test_defaults_bound_slow_clients_and_leave_the_cap_to_the_fd_limit(tmp_path: Path) -> None:
    limits = HttpLimits.from_settings(Settings(data_dir=tmp_path).validate())
    assert limits == HttpLimits(header_timeout=10.0, body_timeout=30.0, min_body_rate=1024,
                                max_header_bytes=65536, max_headers=100, max_url_bytes=8192,
                                max_connections=None)


def test_config_file_sets_every_http_limit(tmp_path: Path) -> None:
    settings = overlay(tmp_path, {"header_timeout": 1, "body_timeout": 2.5, "min_body_rate": 0,
                                  "max_header_bytes": 4096, "max_headers": 20,
                                  "max_url_bytes": 1024, "max_connections": 64})
    assert HttpLimits.from_settings(settings) == HttpLimits(1, 2.5, 0, 4096, 20, 1024, 64)


@pytest.mark.parametrize(("field", "value"), [
    ("header_timeout", 0), ("header_timeout", -1), ("header_timeout", 7200),
    ("header_timeout", "10s"), ("header_timeout", True), ("header_timeout", None),
    ("body_timeout", 0), ("body_timeout", "30"),
    ("min_body_rate", -1), ("min_body_rate", 1.5), ("min_body_rate", False),
    ("max_header_bytes", 100), ("max_header_bytes", 1 << 30), ("max_header_bytes", 65536.0),
    ("max_headers", 0), ("max_headers", 1_000_000),
    ("max_url_bytes", 10), ("max_url_bytes", "8k"),
    ("max_connections", 0), ("max_connections", 10), ("max_connections", 2_000_000),
    ("max_connections", "auto"), ("max_connections", True),
])
def test_bad_http_limit_is_refused_with_its_rule(tmp_path: Path, field: str,
                                                 value: object) -> None:
    with pytest.raises(ValueError, match=f"^{field} must be"):
        overlay(tmp_path, {field: value})


@pytest.mark.server
def test_bad_http_limit_stops_the_server_with_one_clear_line(tmp_path: Path) -> None:
    config = tmp_path / "kq.json"
    config.write_text('{"header_timeout": 0}')
    result = subprocess.run(
        [sys.executable, "-m", "keyquorum", "server", "--data-dir", str(tmp_path / "d"),
         "--listen", f"127.0.0.1:{free_port()}", "--config", str(config)],
        capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert result.stderr.startswith("error: header_timeout must be")
    assert "Traceback" not in result.stderr


def test_connection_budget_keeps_a_reserve_below_the_descriptor_limit() -> None:
    assert descriptor_budget(256) == 256 - FD_RESERVE
    assert descriptor_budget(1024) == 1024 - FD_RESERVE
    assert descriptor_budget(65536) == 65536 - 65536 // 8
    assert descriptor_budget(64) == 16  # a tiny limit still serves someone


def test_configured_cap_never_exceeds_the_descriptor_budget() -> None:
    assert ConnectionTable(HttpLimits(max_connections=5000), lambda: 1024).cap() == 896
    assert ConnectionTable(HttpLimits(max_connections=100), lambda: 1024).cap() == 100
    assert ConnectionTable(HttpLimits(), lambda: 20000).cap() == 17500


def test_a_cap_above_the_descriptor_limit_is_named_in_a_start_warning() -> None:
    warning = cap_warning(HttpLimits(max_connections=5000), soft_limit=1024)
    assert warning is not None and "at most 896 connections" in warning
    assert cap_warning(HttpLimits(max_connections=500), soft_limit=1024) is None
    assert cap_warning(HttpLimits(), soft_limit=256) is None
