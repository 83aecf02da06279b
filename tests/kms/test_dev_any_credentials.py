"""``keyquorum dev --aws-any-credentials``: a loud warning, then any well-formed signature
is root on the KMS API (as local emulators do); ``keyquorum server`` has no such flag."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import httpx
import pytest
from botocore.config import Config
from tests.kq_support import free_port

pytestmark = pytest.mark.server


def test_dev_accepts_any_signature_with_a_warning(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "dev.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "keyquorum", "dev", "--data-dir", str(tmp_path / "data"),
             "--listen", f"127.0.0.1:{port}", "--aws-any-credentials"],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/sys/health", timeout=1).json()[
                        "sealed"] is False:
                    break
            except (httpx.TransportError, ValueError, KeyError):
                pass
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        kms = boto3.client("kms", endpoint_url=f"http://127.0.0.1:{port}",
                           region_name="us-east-1", aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
                           aws_secret_access_key="anything",
                           config=Config(retries={"max_attempts": 1}))
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        assert kms.decrypt(CiphertextBlob=kms.encrypt(KeyId=key_id, Plaintext=b"x")[
            "CiphertextBlob"])["Plaintext"] == b"x"
        assert "--aws-any-credentials" in log.read_text()
        assert "ROOT identity" in log.read_text()
    finally:
        process.terminate()
        process.wait(timeout=30)
    refused = subprocess.run(
        [sys.executable, "-m", "keyquorum", "server", "--data-dir", str(tmp_path / "x"),
         "--listen", "127.0.0.1:1", "--aws-any-credentials"],
        capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode != 0 and "aws-any-credentials" in refused.stderr
