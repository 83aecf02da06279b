"""Schemathesis runs every check against a live server, from the committed document.

The OpenAPI document (docs/openapi.json) is the contract; this runs Schemathesis
(every check, its default: server errors, status codes, content types, response schemas,
negative and positive data, missing auth, unsupported methods, Allow headers,
ignored auth, ...) against a real server with a fixed seed and a bounded number
of examples per operation, and requires zero failures. Exclusions are named,
with their reasons, in schemathesis.toml beside this file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from kq_support import ServerProcess, free_port

pytestmark = [pytest.mark.server, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _schemathesis() -> list[str]:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("schemathesis is not installed: pip install -e '.[test]'")
    return [found]


def test_schemathesis_finds_no_server_error_and_no_failed_check(tmp_path: Path) -> None:
    server = ServerProcess(data_dir=tmp_path / "data", port=free_port(), test_clock=False)
    try:
        server.start()
        server.init()
        server.unseal()
        with server.client() as root:
            for name, spec in (("st/aes", "aes-256-gcm"), ("st/sign", "ed25519"),
                               ("st/mac", "hmac-sha256"), ("st/kem", "ml-kem-768")):
                root.post("/v1/keys", json={"name": name, "spec": spec}).raise_for_status()
        report = tmp_path / "report"
        command = [*_schemathesis(), "--config-file", str(HERE / "schemathesis.toml"), "run",
                   str(ROOT / "docs" / "openapi.json"), "--url", server.addr,
                   "--header", f"Authorization: Bearer {server.root_token}",
                   "--max-time", os.environ.get("KQ_SCHEMATHESIS_TIME", "150"),
                   "--phases", "examples,coverage,fuzzing,stateful", "--no-color",
                   "--report", "junit", "--report-dir", str(report)]
        run = subprocess.run(command, capture_output=True, text=True, timeout=900,
                             check=False)
        (report / "output.txt").write_text(run.stdout + run.stderr)
        start = run.stdout.find("FAILURES")
        summary = run.stdout[start:start + 20000] if start >= 0 else run.stdout[-8000:]
        assert run.returncode == 0, summary
        assert "5xx" not in summary
        health = httpx.get(f"{server.addr}/v1/sys/health", timeout=10)
        assert health.status_code == 200
        with server.client() as root:
            assert root.post("/v1/audit/verify", json={}).json()["ok"] is True
    finally:
        server.stop()
