"""Starting and logging in like the tools people know: the token file, login, status, dev's port.

The token file is a secret: 0600, replaced whole, refused when others may read it;
``--token`` and ``KEYQUORUM_TOKEN`` win over it. ``keyquorum dev`` checks its port
before it makes a store or prints a secret, and logs the CLI in; ``keyquorum server``
on a fresh store says what to run next.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from keyquorum.cli.main import app
from keyquorum.token_file import TokenFileError, read_token, remove_token, token_path, write_token
from kq_support import ServerProcess, free_port


def test_the_token_file_is_0600_replaced_whole_and_found_through_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "nested" / "tok"
    monkeypatch.setenv("KEYQUORUM_TOKEN_FILE", str(path))
    assert token_path() == path and read_token() is None
    write_token("kq_first")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    write_token("kq_second")
    assert read_token() == "kq_second"
    assert [p.name for p in path.parent.iterdir()] == ["tok"]  # no temporary left behind
    monkeypatch.delenv("KEYQUORUM_TOKEN_FILE")
    assert token_path() == Path.home() / ".keyquorum-token"
    assert remove_token(path) and not remove_token(path)


def test_a_token_file_others_may_read_is_refused_not_used(tmp_path: Path) -> None:
    path = tmp_path / "tok"
    write_token("kq_secret_value", path)
    path.chmod(0o644)
    with pytest.raises(TokenFileError) as refused:
        read_token(path)
    assert "chmod 600" in str(refused.value) and "kq_secret_value" not in str(refused.value)
    link = tmp_path / "link"
    link.symlink_to(path)
    path.chmod(0o600)
    with pytest.raises(TokenFileError):
        read_token(link)  # never followed: a link could point the CLI anywhere


@pytest.fixture
def cli(shared_server: ServerProcess, tmp_path: Path):
    """The CLI in process with the server's address and a token file of this test's own."""
    runner = CliRunner()
    token_file = tmp_path / "token"

    def invoke(*args: str, token: str | None = None, input: str | None = None):
        env = {"KEYQUORUM_ADDR": shared_server.addr, "KEYQUORUM_TOKEN_FILE": str(token_file),
               "KEYQUORUM_TOKEN": token}
        return runner.invoke(app, list(args), env=env, input=input)

    invoke.token_file = token_file  # type: ignore[attr-defined]
    return invoke


pytestmark = pytest.mark.server


def test_login_checks_and_stores_the_token_and_later_commands_use_it(
        cli, shared_server: ServerProcess) -> None:
    no_token = cli("key", "list")
    assert no_token.exit_code == 1 and no_token.stderr.startswith("error: unauthenticated")
    wrong = cli("login", "kq_not_a_real_token")
    assert wrong.exit_code == 1 and "unauthenticated" in wrong.stderr
    assert not cli.token_file.exists()  # a token the server refused is not stored

    done = cli("login", input=shared_server.root_token + "\n")  # from stdin, not argv
    assert done.exit_code == 0, done.output
    assert "logged in as" in done.stdout and shared_server.root_token not in done.output
    assert cli.token_file.read_text().strip() == shared_server.root_token
    assert stat.S_IMODE(cli.token_file.stat().st_mode) == 0o600
    assert cli("key", "list").exit_code == 0

    env_wins = cli("key", "list", token="kq_wrong_env_token")
    assert env_wins.exit_code == 1 and "unauthenticated" in env_wins.stderr
    assert cli("logout").exit_code == 0 and not cli.token_file.exists()


def test_status_shows_seal_node_margin_and_identity_on_one_screen(
        cli, shared_server: ServerProcess) -> None:
    shown = cli("status", token=shared_server.root_token)
    assert shown.exit_code == 0, shown.output
    for line in ("unsealed", "node", "version", "quorum margin", "you", "policies"):
        assert line in shown.stdout
    answer = json.loads(cli("--json", "status", token=shared_server.root_token).stdout)
    assert answer["health"]["sealed"] is False and answer["identity"]["accessor"]
    assert answer["quorum"]["threshold"] == 2 and answer["errors"] == {}
    anonymous = json.loads(cli("--json", "status").stdout)  # no token: the rest still shows
    assert anonymous["identity"] is None and "identity" in anonymous["errors"]
    assert anonymous["health"]["initialized"] is True


def _listening_socket() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, sock.getsockname()[1]


def test_dev_on_a_busy_port_says_so_before_making_a_store_or_printing_a_secret(
        tmp_path: Path) -> None:
    sock, port = _listening_socket()
    data_dir = tmp_path / "dev"
    with sock:
        result = subprocess.run(
            [sys.executable, "-m", "keyquorum", "dev", "--data-dir", str(data_dir),
             "--listen", f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=60, check=False,
            env={**os.environ, "KEYQUORUM_TOKEN_FILE": str(tmp_path / "tok")})
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: 127.0.0.1:{port} is already in use")
    assert f"--listen 127.0.0.1:{port + 1}" in result.stderr  # what to do instead
    assert "root token" not in result.stderr and "DEVELOPMENT MODE" not in result.stderr
    assert not data_dir.exists() and not (tmp_path / "tok").exists()


def test_dev_logs_the_cli_in_on_this_machine(tmp_path: Path) -> None:
    port = free_port()
    token_file = tmp_path / "tok"
    env = {**os.environ, "KEYQUORUM_TOKEN_FILE": str(token_file), "PYTHONUNBUFFERED": "1",
           "KEYQUORUM_ADDR": f"http://127.0.0.1:{port}"}
    env.pop("KEYQUORUM_TOKEN", None)
    log = tmp_path / "dev.log"
    with open(log, "wb") as out:
        dev = subprocess.Popen([sys.executable, "-m", "keyquorum", "dev", "--data-dir",
                                str(tmp_path / "dev"), "--listen", f"127.0.0.1:{port}"],
                               stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert dev.poll() is None, log.read_text()
            try:
                httpx.get(f"http://127.0.0.1:{port}/v1/sys/health", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "dev server did not start"
                time.sleep(0.1)
        saved = json.loads((tmp_path / "dev" / "dev-init.json").read_text())
        assert token_file.read_text().strip() == saved["root_token"]
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        listed = subprocess.run([sys.executable, "-m", "keyquorum", "--json", "key", "list"],
                                env=env, capture_output=True, text=True, check=False)
        assert listed.returncode == 0, listed.stderr
        assert json.loads(listed.stdout) == {"keys": []}
    finally:
        dev.terminate()
        dev.wait(timeout=30)
    output = log.read_text()
    assert str(token_file) in output and "logged in" in output
    assert output.count(saved["root_token"]) == 1  # in the one-time warning box only


def test_server_on_a_fresh_store_says_what_to_run_next(fresh_server: ServerProcess) -> None:
    log = fresh_server.data_dir.parent / f"server-{fresh_server.port}.log"
    deadline = time.monotonic() + 10
    while "operator init" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    text = log.read_text()
    assert "(uninitialized)" in text and "keyquorum operator init" in text
    assert f"KEYQUORUM_ADDR=http://127.0.0.1:{fresh_server.port}" in text
