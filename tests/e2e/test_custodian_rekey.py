"""Rekey through the CLI against a real server process, as custodians and an operator do it:
each custodian makes a key pair at home and registers it with their share, the rekey
prints only sealed shares, each custodian opens and acknowledges their own, and a key
an operator substituted for a custodian's is caught by that custodian at first use.

(Rekey over HTTP, in process: tests/service/test_rekey.py, test_share_delivery.py.)"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keyquorum.cli.main import app
from kq_support import ServerProcess

pytestmark = pytest.mark.server
PASSPHRASE = "a custodian's passphrase"
NAMES = ("share-1", "share-2", "share-3")


def test_cli_rekey_seals_each_new_share_to_its_custodian(kq_server: ServerProcess,
                                                         tmp_path: Path) -> None:
    anyone = {"KEYQUORUM_ADDR": kq_server.addr}  # custodians hold no token
    operator = {**anyone, "KEYQUORUM_TOKEN": kq_server.root_token}
    runner = CliRunner()
    home = {}
    for i, name in enumerate(NAMES):
        key = tmp_path / f"{name}.kqkey"
        made = runner.invoke(app, ["custodian", "keygen", "--name", name, "--out", str(key)],
                             input=PASSPHRASE + "\n", env=anyone)
        assert made.exit_code == 0, made.output
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
        assert "fingerprint: kqck1:" in made.stdout
        share = tmp_path / f"{name}.share"
        share.write_text(kq_server.shares[i])
        registered = runner.invoke(app, ["custodian", "register-key", "--name", name,
                                         "--key-file", str(key), "--share-file", str(share)],
                                   env=anyone)
        assert registered.exit_code == 0, registered.output
        home[name] = (key, share)
    again = runner.invoke(app, ["custodian", "keygen", "--name", "share-1", "--out",
                                str(home["share-1"][0])], input=PASSPHRASE + "\n", env=anyone)
    assert again.exit_code == 1 and "never overwritten" in again.stderr

    # The operator saw every share at a plaintext init: they register their own key in
    # share-3's name (share-3's share proves it), after share-3 registered theirs.
    mallory = tmp_path / "mallory.kqkey"
    runner.invoke(app, ["custodian", "keygen", "--name", "share-3", "--out", str(mallory)],
                  input=PASSPHRASE + "\n", env=anyone)
    assert runner.invoke(app, ["custodian", "register-key", "--name", "share-3", "--key-file",
                               str(mallory), "--share-file", str(home["share-3"][1])],
                         env=anyone).exit_code == 0

    started = runner.invoke(app, ["operator", "rekey", "init", "--reissue"], env=operator)
    assert started.exit_code == 0, started.output
    assert "0/2" in started.stdout and "sealed to kqck1:" in started.stdout
    assert runner.invoke(app, ["operator", "rekey", "submit", "--share-file",
                               str(home["share-1"][1])], env=anyone).exit_code == 0
    last = runner.invoke(app, ["operator", "rekey", "submit"], input=kq_server.shares[1] + "\n",
                         env=anyone)
    assert last.exit_code == 0, last.output
    assert "kqs1-" not in last.output  # the last submitter sees no share, not even theirs
    assert "share 2 (share-2) sealed to kqck1:" in last.stdout

    # share-2 opens their own share, which is checked and acknowledged.
    out = tmp_path / "new-2.share"
    opened = runner.invoke(app, ["custodian", "decrypt-share", "--name", "share-2", "--key-file",
                                 str(home["share-2"][0]), "--out", str(out)],
                           input=PASSPHRASE + "\n", env=anyone)
    assert opened.exit_code == 0, opened.output
    assert "acknowledged" in opened.stdout and out.read_text().startswith("kqs1-02-")
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    # Another custodian's key file does not open it.
    wrong = runner.invoke(app, ["custodian", "decrypt-share", "--name", "share-2", "--key-file",
                                str(home["share-1"][0]), "--no-acknowledge"],
                          input=PASSPHRASE + "\n", env=anyone)
    assert wrong.exit_code == 1 and "error: wrong_custodian_key" in wrong.stderr
    # share-3 finds their share sealed to a key that is not theirs: caught before any
    # passphrase, with the impostor's fingerprint named.
    caught = runner.invoke(app, ["custodian", "decrypt-share", "--name", "share-3", "--key-file",
                                 str(home["share-3"][0])], input=PASSPHRASE + "\n", env=anyone)
    assert caught.exit_code == 1 and "error: custodian_key_mismatch" in caught.stderr
    impostor = json.loads(mallory.read_text())["fingerprint"]
    assert impostor in caught.stderr

    status = runner.invoke(app, ["--json", "custodian", "status"], env=operator)
    body = json.loads(status.stdout)
    assert body["unacknowledged"] == ["share-1", "share-3"]
    table = runner.invoke(app, ["custodian", "status"], env=operator)
    assert "not acknowledged" in table.stdout and "share-3" in table.stdout
