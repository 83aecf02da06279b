"""Rekey through the CLI (``keyquorum operator rekey``) against a real server process.

(Rekey over HTTP, in process: tests/service/test_rekey.py.)"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from keyquorum.cli.main import app
from kq_support import ServerProcess

pytestmark = pytest.mark.server


def test_cli_rekey_shows_the_new_shares_once(kq_server: ServerProcess, tmp_path) -> None:
    env = {"KEYQUORUM_ADDR": kq_server.addr, "KEYQUORUM_TOKEN": kq_server.root_token}
    runner = CliRunner()
    started = runner.invoke(app, ["operator", "rekey", "init", "--replace", "share-2=zoe"],
                            env=env)
    assert started.exit_code == 0, started.output
    assert "0/2" in started.stdout
    first = tmp_path / "one"
    first.write_text(kq_server.shares[0])
    assert runner.invoke(app, ["operator", "rekey", "submit", "--share-file", str(first)],
                         env=env).exit_code == 0
    last = runner.invoke(app, ["operator", "rekey", "submit"], input=kq_server.shares[2] + "\n",
                         env=env)
    assert last.exit_code == 0, last.output
    assert "WARNING" in last.stderr and "ONCE" in last.stderr
    assert "New unseal share 2 (zoe): kqs1-02-" in last.stdout
    status = runner.invoke(app, ["operator", "rekey", "status"], env=env)
    assert "no rekey in progress" in status.stdout
