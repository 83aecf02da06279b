"""Custodian drills through the CLI (``keyquorum custodian prove`` and ``status``) against
a real server process.

(The drills over HTTP, in process: tests/service/test_custodian_drills.py.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from keyquorum.cli.main import app
from kq_support import ServerProcess, free_port

pytestmark = pytest.mark.server
NAMES = ["alice", "bob", "carol", "dan"]


@pytest.fixture(scope="module")
def drill_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(data_dir=tmp_path_factory.mktemp("drills") / "data",
                           port=free_port())
    try:  # stopped even when start, init or unseal fails
        server.start()
        server.init(4, 2, custodians=NAMES)
        server.unseal()
        yield server
    finally:
        server.stop()


def test_cli_prove_and_status(drill_server: ServerProcess, tmp_path) -> None:
    env = {"KEYQUORUM_ADDR": drill_server.addr, "KEYQUORUM_TOKEN": drill_server.root_token}
    share_file = tmp_path / "share.txt"
    share_file.write_text(drill_server.shares[3] + "\n")
    runner = CliRunner()
    proved = runner.invoke(app, ["custodian", "prove", "--name", "dan", "--share-file",
                                 str(share_file)], env=env)
    assert proved.exit_code == 0, proved.output
    assert "verified" in proved.stdout
    wrong = runner.invoke(app, ["custodian", "prove", "--name", "bob", "--share-file",
                                str(share_file)], env=env)
    assert wrong.exit_code == 2 and "holds share 2" in wrong.stderr
    status = runner.invoke(app, ["--json", "custodian", "status"], env=env)
    assert status.exit_code == 0, status.output
    assert '"margin"' in status.stdout and drill_server.commitments[0] in status.stdout
    table = runner.invoke(app, ["custodian", "status"], env=env)
    assert table.exit_code == 0 and "dan" in table.stdout and "quorum margin" in table.stdout
