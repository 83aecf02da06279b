"""`keyquorum operator generate-root ...` against a real server: break glass from a shell.

The requester's key pair is made by ``init --key-file`` (private half in a 0600 file,
never sent); custodians submit with the nonce; the completing submission, run where
the key file is, prints the new root token, and anywhere else prints only the sealed
``encoded_token`` that ``decode`` opens with the key file. No command uses a token.
"""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from keyquorum.cli.main import app
from kq_support import ServerProcess

pytestmark = pytest.mark.server
Run = Callable[..., Any]


@pytest.fixture
def server(fresh_server: ServerProcess) -> ServerProcess:
    fresh_server.init(shares=3, threshold=2)
    fresh_server.unseal()
    with fresh_server.client() as root:  # every privileged token is lost
        me = root.get("/v1/auth/tokens/self").json()["accessor"]
        assert root.delete(f"/v1/auth/tokens/{me}").status_code == 200
    return fresh_server


@pytest.fixture
def run(server: ServerProcess) -> Run:
    runner = CliRunner()

    def invoke(*args: str, stdin: str | None = None) -> Any:
        return runner.invoke(app, list(args), input=stdin,
                             env={"KEYQUORUM_ADDR": server.addr, "KEYQUORUM_TOKEN": ""})

    return invoke


def _token_works(server: ServerProcess, token: str) -> bool:
    answer = httpx.get(f"{server.addr}/v1/auth/tokens/self", timeout=30,
                       headers={"Authorization": f"Bearer {token}"})
    return answer.status_code == 200 and answer.json()["policies"] == ["root"]


def test_break_glass_from_the_command_line(server: ServerProcess, run: Run,
                                           tmp_path: Path) -> None:
    key_file = tmp_path / "requester.key"
    opened = run("operator", "generate-root", "init", "--key-file", str(key_file),
                 stdin=server.shares[0] + "\n")
    assert opened.exit_code == 0, opened.output
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "PRIVATE KEY" in key_file.read_text()
    found = re.search(r"^nonce: ([0-9a-f]{32})$", opened.stdout, re.MULTILINE)
    assert found, opened.stdout
    nonce = found.group(1)
    status = run("--json", "operator", "generate-root", "status")
    assert status.exit_code == 0 and nonce not in status.stdout
    assert json.loads(status.stdout)["progress"] == 1

    # The completing custodian has no key file: only the sealed token is printed.
    done = run("--json", "operator", "generate-root", "submit", "--nonce", nonce,
               stdin=server.shares[1] + "\n")
    assert done.exit_code == 0, done.output
    answer = json.loads(done.stdout)
    assert answer["complete"] is True and "kq_" not in done.stdout
    decoded = run("operator", "generate-root", "decode", "--key-file", str(key_file),
                  "--attempt", answer["attempt"], stdin=answer["encoded_token"])
    assert decoded.exit_code == 0, decoded.output
    assert _token_works(server, decoded.stdout.strip())

    # Another key file cannot open it.
    other = tmp_path / "other.key"
    run("operator", "generate-root", "init", "--key-file", str(other),
        stdin=server.shares[2] + "\n")
    refused = run("operator", "generate-root", "decode", "--key-file", str(other),
                  "--attempt", answer["attempt"], answer["encoded_token"])
    assert refused.exit_code == 2 and "does not open" in refused.output


def test_the_key_holder_completing_the_quorum_sees_the_token_and_cancel_needs_the_nonce(
        server: ServerProcess, run: Run, tmp_path: Path) -> None:
    key_file = tmp_path / "requester.key"
    opened = run("--json", "operator", "generate-root", "init", "--key-file", str(key_file),
                 "--ttl", "1h", stdin=server.shares[2] + "\n")
    nonce = json.loads(opened.stdout)["nonce"]
    assert run("operator", "generate-root", "cancel", "--nonce", "0" * 32).exit_code == 1
    assert run("operator", "generate-root", "cancel", "--nonce", nonce).exit_code == 0
    again = run("--json", "operator", "generate-root", "init", "--key-file", str(key_file),
                stdin=server.shares[2] + "\n")  # the same key file, used again
    nonce = json.loads(again.stdout)["nonce"]
    done = run("operator", "generate-root", "submit", "--nonce", nonce, "--key-file",
               str(key_file), stdin=server.shares[0] + "\n")
    assert done.exit_code == 0, done.output
    token = re.search(r"Root token: (kq_\S+)", done.stdout)
    assert token and _token_works(server, token.group(1))
    assert "SECRET MATERIAL" in done.stderr


def test_a_custodian_key_file_serves_as_the_requesters_key(server: ServerProcess, run: Run,
                                                          tmp_path: Path) -> None:
    from keyquorum.seal.custodian_key import generate, seal_key_file

    key_file = tmp_path / "ana.kqkey"  # as `keyquorum custodian keygen` writes it
    key_file.write_bytes(seal_key_file(generate("ana"), "a long passphrase 42"))
    opened = run("--json", "operator", "generate-root", "init", "--key-file", str(key_file),
                 stdin=server.shares[0] + "\n")
    assert opened.exit_code == 0, opened.output
    nonce = json.loads(opened.stdout)["nonce"]
    done = run("operator", "generate-root", "submit", "--nonce", nonce, "--key-file",
               str(key_file), stdin=server.shares[1] + "\n" + "a long passphrase 42\n")
    assert done.exit_code == 0, done.output
    token = re.search(r"Root token: (kq_\S+)", done.stdout)
    assert token and _token_works(server, token.group(1))
