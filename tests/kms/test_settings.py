"""KMS settings and the sealed server: the account and regions are checked at start-up,
``aws_any_credentials`` only comes from ``keyquorum dev``, and a sealed server answers
KMS clients with the retryable DependencyTimeoutException."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.kms.live import LiveServer

from keyquorum.config import Settings, load_config_file
from keyquorum.kms.call import KmsCall


def _load(tmp_path: Path, raw: dict[str, Any]) -> Settings:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    return load_config_file(Settings(data_dir=tmp_path), path).validate()


def test_any_credentials_cannot_come_from_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keyquorum dev"):
        _load(tmp_path, {"aws_any_credentials": True})


def test_account_and_regions_are_checked(tmp_path: Path) -> None:
    loaded = _load(tmp_path, {"aws_account_id": "123456789012",
                              "aws_regions": ["eu-west-1", "us-east-1"]})
    assert loaded.aws_account_id == "123456789012"
    assert loaded.aws_regions == ("eu-west-1", "us-east-1")
    for bad in ({"aws_account_id": "12345"}, {"aws_regions": "eu-west-1"},
                {"aws_regions": ["EU WEST"]}):
        with pytest.raises(ValueError, match="aws_"):
            _load(tmp_path, bad)


def test_a_kms_call_never_shows_its_fields() -> None:
    assert KmsCall.__dataclass_fields__["body"].repr is False


def test_a_sealed_server_answers_dependency_timeout(tmp_path: Path,
                                                  migrated_store: Path) -> None:
    server = LiveServer(tmp_path / "data", migrated=migrated_store)
    try:
        server.start()
        client = server.kms(server.access_key(["root"]))
        client.list_keys()
        with server.http() as http:
            assert http.post("/v1/sys/seal").status_code in (200, 204)
        with pytest.raises(ClientError) as refused:
            client.list_keys()
        assert refused.value.response["Error"]["Code"] == "DependencyTimeoutException"
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    finally:
        server.stop()
