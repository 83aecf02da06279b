"""``keyquorum operator seals`` and ``operator unseal --passphrase`` against a real server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keyquorum.cli.main import app
from kq_support import ServerProcess, configured_server
from sealset_support import (
    SOFTHSM_MODULE,
    MotoKms,
    SoftHsm,
    moto_kms,
    seal_trust_config,
    softhsm,
)

__all__ = ["moto_kms", "softhsm"]

pytestmark = pytest.mark.server
PHRASE = "typed once on stdin, never shown"


@pytest.fixture
def kq_server(tmp_path: Path, moto_kms: MotoKms) -> Iterator[ServerProcess]:
    """Initialized and unsealed; its config file lets it load SoftHSM2 and call moto."""
    server = configured_server(tmp_path, seal_trust_config(moto_kms))
    try:
        server.start()
        server.init()
        server.unseal()
        yield server
    finally:
        server.stop()


def test_operator_adds_lists_removes_seals_and_unseals_with_a_passphrase(
        kq_server: ServerProcess, softhsm: SoftHsm, moto_kms: MotoKms) -> None:
    runner = CliRunner()
    env = {"KEYQUORUM_ADDR": kq_server.addr, "KEYQUORUM_TOKEN": kq_server.root_token}

    def kq(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(app, list(args), input=input, env=env)

    added = kq("--json", "operator", "seals", "add", "passphrase", input=PHRASE + "\n")
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["id"] == "passphrase"
    # The server's environment has no PIN variable by this name: a clear refusal.
    refused = kq("operator", "seals", "add", "pkcs11", "--module", SOFTHSM_MODULE,
                 "--token-label", softhsm.token(), "--key-label", "k", "--pin-env",
                 "KEYQUORUM_HSM_PIN_CLI_NO_SUCH")
    assert refused.exit_code == 1
    assert "seal_unavailable" in refused.stderr
    assert "KEYQUORUM_HSM_PIN_CLI_NO_SUCH" in refused.stderr
    kms = kq("operator", "seals", "add", "awskms", "--id", "cloud", "--key-id",
             moto_kms.create_key(), "--region", moto_kms.region, "--endpoint-url",
             moto_kms.endpoint_url)
    assert kms.exit_code == 0, kms.output
    assert "added awskms seal cloud" in kms.stdout

    listed = kq("operator", "seals", "list")
    assert listed.exit_code == 0, listed.output
    for word in ("shamir", "passphrase", "cloud", "awskms"):
        assert word in listed.stdout
    assert PHRASE not in listed.stdout

    assert kq("operator", "seal").exit_code == 0
    wrong = kq("operator", "unseal", "--passphrase", input="not it at all, sorry\n")
    assert wrong.exit_code == 1 and "wrong_passphrase" in wrong.stderr
    opened = kq("--json", "operator", "unseal", "--passphrase", input=PHRASE + "\n")
    assert opened.exit_code == 0, opened.output
    assert json.loads(opened.stdout)["sealed"] is False

    assert kq("operator", "seals", "remove", "shamir").exit_code == 1
    removed = kq("operator", "seals", "remove", "cloud")
    assert removed.exit_code == 0 and "removed seal cloud" in removed.stdout
    ids = [s["id"] for s in json.loads(kq("--json", "operator", "seals", "list").stdout)]
    assert ids == ["shamir", "passphrase"]
