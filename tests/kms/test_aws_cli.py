"""The ``aws kms`` command line against a live server, with credentials from
``eval "$(keyquorum access-key create --policy P)"``: the commands of issue 13, unchanged
but for the endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.kms.live import LiveServer

BIN = Path(sys.executable).parent


def _shell(live: LiveServer, script: str, cwd: Path) -> str:
    env = {"PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}", "HOME": str(cwd),
           "KEYQUORUM_ADDR": live.addr, "KEYQUORUM_TOKEN": live.root_token,
           "AWS_ENDPOINT_URL_KMS": live.addr, "AWS_DEFAULT_REGION": "eu-west-1",
           "AWS_CONFIG_FILE": str(cwd / "none"), "AWS_SHARED_CREDENTIALS_FILE":
           str(cwd / "none"), "AWS_EC2_METADATA_DISABLED": "true"}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def test_the_issue_commands_run_unchanged(live: LiveServer, tmp_path: Path) -> None:
    (tmp_path / "data.json").write_text('{"card": "4111 1111 1111 1111"}')
    out = _shell(live, """
        eval "$(keyquorum access-key create --policy root --name aws-cli)"
        test -n "$AWS_ACCESS_KEY_ID" && test -n "$AWS_SECRET_ACCESS_KEY"
        KEY_ID=$(aws kms create-key --key-spec SYMMETRIC_DEFAULT --key-usage ENCRYPT_DECRYPT \
                 --description "aws cli" --query KeyMetadata.KeyId --output text)
        aws kms create-alias --alias-name alias/my-key --target-key-id "$KEY_ID"
        aws kms encrypt --key-id alias/my-key --plaintext fileb://data.json \
            --encryption-context purpose=test --query CiphertextBlob --output text \
            | base64 -d > data.json.encrypted
        aws kms decrypt --ciphertext-blob fileb://data.json.encrypted \
            --encryption-context purpose=test --query Plaintext --output text \
            | base64 -d > data.json.decrypted
        cmp data.json data.json.decrypted
        aws kms enable-key-rotation --key-id alias/my-key
        aws kms get-key-rotation-status --key-id "$KEY_ID" --output json > rotation.json
        aws kms describe-key --key-id alias/my-key --output json > describe.json
        aws kms list-aliases --output json > aliases.json
        aws kms generate-data-key --key-id alias/my-key --key-spec AES_256 \
            --query KeyId --output text
    """, tmp_path)
    assert ":key/" in out
    assert json.loads((tmp_path / "rotation.json").read_text())["KeyRotationEnabled"] is True
    meta: dict[str, Any] = json.loads((tmp_path / "describe.json").read_text())["KeyMetadata"]
    assert meta["Description"] == "aws cli" and meta["KeySpec"] == "SYMMETRIC_DEFAULT"
    aliases = json.loads((tmp_path / "aliases.json").read_text())["Aliases"]
    assert "alias/my-key" in {a["AliasName"] for a in aliases}
    # The encrypted file is a keyquorum ciphertext: the native API reads it as is.
    text = (tmp_path / "data.json.encrypted").read_text()
    with live.http() as http:
        opened = http.post("/v1/decrypt", json={"ciphertext": text,
                                                "context": {"purpose": "test"}})
    assert opened.status_code == 200, opened.text


def test_access_key_json_list_and_revoke(live: LiveServer, tmp_path: Path) -> None:
    out = _shell(live, "keyquorum --json access-key create --policy root", tmp_path)
    made = json.loads(out)
    assert made["access_key_id"].startswith("KQAK") and made["secret_access_key"]
    listed = _shell(live, "keyquorum --json access-key list", tmp_path)
    assert made["accessor"] in listed and made["secret_access_key"] not in listed
    _shell(live, f"keyquorum access-key revoke {made['accessor']}", tmp_path)
    failed = subprocess.run(
        [str(BIN / "aws"), "kms", "list-keys"], capture_output=True, text=True, timeout=120,
        env={**os.environ, "AWS_ENDPOINT_URL_KMS": live.addr,
             "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": made["access_key_id"],
             "AWS_SECRET_ACCESS_KEY": made["secret_access_key"],
             "AWS_CONFIG_FILE": str(tmp_path / "none"),
             "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}, check=False)
    assert failed.returncode != 0
    assert "UnrecognizedClientException" in failed.stderr


def test_the_sdk_makes_lists_and_revokes_access_keys(live: LiveServer) -> None:
    from keyquorum.client import Client

    with Client(live.addr, live.root_token) as kq:
        made = kq.create_access_key(["root"], ttl="1h", name="sdk")
        assert made.secret_access_key not in repr(made)
        assert made.shell_exports() == (
            f"export AWS_ACCESS_KEY_ID={made.access_key_id}\n"
            f"export AWS_SECRET_ACCESS_KEY={made.secret_access_key}\n")
        assert made.accessor in {k.accessor for k in kq.list_access_keys()}
        assert live.kms({"access_key_id": made.access_key_id,
                         "secret_access_key": made.secret_access_key}).list_keys()
        kq.revoke_access_key(made.accessor)
        assert made.accessor not in {k.accessor for k in kq.list_access_keys()}
