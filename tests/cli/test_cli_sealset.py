"""``keyquorum operator seals`` and ``operator unseal --passphrase`` against a real server."""

from __future__ import annotations

import json
import re
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

    def approve(nonce: str) -> dict:
        """Two custodians submit their shares: no token, the share is the credential."""
        for share in kq_server.shares[:2]:
            step = runner.invoke(app, ["--json", "operator", "seals", "submit", "--nonce",
                                       nonce], input=share + "\n",
                                 env={"KEYQUORUM_ADDR": kq_server.addr})
            assert step.exit_code == 0, step.output
        return dict(json.loads(step.stdout))

    added = kq("--json", "operator", "seals", "add", "passphrase", input=PHRASE + "\n")
    assert added.exit_code == 0, added.output
    proposal = json.loads(added.stdout)
    assert proposal["started"] is True and proposal["seal"]["id"] == "passphrase"
    pending = kq("operator", "seals", "pending")
    assert pending.exit_code == 0 and "proposed passphrase seal passphrase" in pending.stdout
    assert approve(proposal["nonce"])["complete"] is True
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
    assert "proposed awskms seal cloud" in kms.stdout
    nonce = re.search(r"--nonce ([0-9a-f]+)", kms.stdout)
    assert nonce is not None and approve(nonce.group(1))["seal"]["id"] == "cloud"

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
