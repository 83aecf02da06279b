"""Output a person can read: 80 columns, plain help, one-line errors, one time format, --json.

80 columns is what a pipe or a small terminal gets. A word (a key name, a hash, a
time) is never broken in the middle: columns that do not fit are left out and
named, and ``--json`` keeps them all.
"""

from __future__ import annotations

import inspect
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from typer._click import Context
from typer.testing import CliRunner

from keyquorum.cli._common import fit_columns, when
from keyquorum.cli.main import COMMANDS, app, load_command
from kq_support import ServerProcess, free_port

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def test_columns_keep_their_longest_word_and_drop_from_the_named_ones_first() -> None:
    columns = ["key", "owner", "hash", "when"]
    cells = [["backups/primary", "team-a", "ab" * 32, "2026-12-05T07:48:51Z"]]
    keep, narrowest = fit_columns(columns, cells, 200)
    assert keep == [0, 1, 2, 3] and narrowest == [15, 6, 64, 20]
    keep, _ = fit_columns(columns, cells, 90, drop=("owner",))
    assert keep == [0, 2]  # owner first (named), then from the right: when
    keep, _ = fit_columns(columns, cells, 10)
    assert keep == [0]  # what the row is about always stays


def test_times_have_one_format() -> None:
    assert when("2026-12-12 07:49:09.153550+00:00") == "2026-12-12T07:49:09Z"
    assert when("2026-12-12T08:49:09+01:00") == "2026-12-12T07:49:09Z"
    assert when("not a time") == "not a time" and when(None) == "-"


def test_top_level_help_lines_are_the_commands_own() -> None:
    for name in COMMANDS:
        command = load_command(name)
        own = (command.help or "").strip().split("\n")[0]
        assert own == COMMANDS[name].help, name


def _leaves(command: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    if hasattr(command, "list_commands"):
        ctx = Context(command)
        for name in command.list_commands(ctx):
            yield from _leaves(command.get_command(ctx, name), [*path, name])
    else:
        yield path, command


def test_every_command_sees_the_json_flag() -> None:
    """A command that does not take the context cannot honour --json (node-key did not).

    ``dev`` and ``server`` are exempt: they run the service, and what they print is
    its log, not an answer.
    """
    blind = []
    for name in COMMANDS:
        for path, command in _leaves(load_command(name), [name]):
            callback = inspect.unwrap(command.callback)
            if "ctx" not in inspect.signature(callback).parameters:
                blind.append(" ".join(path))
    assert blind == ["dev", "server"]


@pytest.fixture
def run(shared_server: ServerProcess):
    runner = CliRunner()

    def invoke(*args: str, addr: str | None = None, input: str | None = None):
        return runner.invoke(app, list(args), input=input, env={
            "KEYQUORUM_ADDR": addr or shared_server.addr, "COLUMNS": "80",
            "KEYQUORUM_TOKEN": shared_server.root_token})

    return invoke


def test_help_shows_plain_option_names_and_no_type_noise(run) -> None:
    shown = run("key", "create", "--help")
    assert shown.exit_code == 0
    for noise in ("<bool>", "<str>", "<list[str]>", "<int range>", "…", "╭"):
        assert noise not in shown.stdout
    assert "--deletion-window-days INTEGER" in shown.stdout
    assert "--label TEXT" in shown.stdout and "Usage: keyquorum key create [OPTIONS] NAME" \
        in shown.stdout
    assert all(len(line) <= 80 for line in shown.stdout.splitlines())


def test_a_usage_error_is_one_line_like_every_other_error(run) -> None:
    missing = run("key", "create")
    assert missing.exit_code == 2
    assert missing.stderr == ("error: usage: Missing argument 'NAME'. "
                              "(see `keyquorum key create --help`)\n")
    bare = run("key")  # a group alone shows its help, not an error line around it
    assert bare.exit_code == 2 and bare.stderr.startswith("Usage: keyquorum key [OPTIONS]")
    assert "error:" not in bare.stderr
    unknown = run("key", "nope")
    assert unknown.exit_code == 2 and unknown.stderr.count("\n") == 1
    assert unknown.stderr.startswith("error: usage: No such command 'nope'")


@pytest.mark.server
def test_tables_at_80_columns_never_break_a_word(run) -> None:
    prefix = f"out{uuid.uuid4().hex[:6]}"
    names = [f"{prefix}/backups/primary-archive", f"{prefix}/payments/cards-eu-west"]
    for name in names:
        assert run("key", "create", name, "--spec", "aes-256-gcm",
                   "--owner", "platform-security-team").exit_code == 0
    for command in (("key", "list", "--prefix", prefix), ("report", "inventory")):
        shown = run(*command)
        assert shown.exit_code == 0, shown.output
        lines = shown.stdout.splitlines()
        assert all(len(line) <= 80 for line in lines), command
        for name in names:
            assert any(name in line for line in lines), (command, name)
    inventory = run("report", "inventory").stdout
    assert "not shown at this width" in inventory  # ten columns do not fit in 80
    assert TIME.search(inventory.splitlines()[0])  # generated at, in the one format


@pytest.mark.server
def test_a_hash_stays_whole_on_one_line_at_80_columns(run) -> None:
    verified = run("audit", "verify")
    assert verified.exit_code == 0, verified.output
    lines = verified.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("head "))
    # The record number, then the chain hash, whole on a line (copyable), never cut.
    assert re.fullmatch(r"head +\d+( [0-9a-f]{64})?", lines[at]), lines[at]
    hashes = re.findall(r"(?<![0-9a-f])[0-9a-f]+(?![0-9a-f])", " ".join(lines[at:at + 2]))
    assert [len(h) for h in hashes if len(h) > 8] == [64], lines[at:at + 2]


@pytest.mark.server
def test_human_times_share_one_format(run) -> None:
    name = f"out/del-{uuid.uuid4().hex[:6]}"
    run("key", "create", name, "--spec", "aes-256-gcm")
    scheduled = run("key", "schedule-deletion", name, "--days", "7")
    assert scheduled.exit_code == 0, scheduled.output
    assert re.fullmatch(rf"{name}: destroyed at {TIME.pattern} unless cancelled\n",
                        scheduled.stdout)
    shown = run("key", "show", name).stdout
    created = next(line for line in shown.splitlines() if line.startswith("created "))
    assert TIME.search(created) and "+00:00" not in shown


@pytest.mark.server
def test_share_check_honours_json(run, shared_server: ServerProcess, tmp_path) -> None:
    commitments = tmp_path / "seal.json"
    commitments.write_text(json.dumps({"commitments": shared_server.commitments}))
    checked = run("--json", "share", "check", "--commitments", str(commitments),
                  input=shared_server.shares[0] + "\n")
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.stdout) == {"ok": True, "index": 1}


@pytest.mark.server
def test_connection_errors_say_what_is_wrong_in_words(run, shared_server: ServerProcess) -> None:
    no_scheme = run("key", "list", addr=f"127.0.0.1:{shared_server.port}")
    assert no_scheme.exit_code == 1
    assert "has no scheme: write it as http://HOST:PORT" in no_scheme.stderr
    tls_to_plain = run("key", "list", addr=f"https://127.0.0.1:{shared_server.port}")
    assert tls_to_plain.exit_code == 1
    assert "speaks plain HTTP; use http://127.0.0.1:" in tls_to_plain.stderr
    refused = run("key", "list", addr=f"http://127.0.0.1:{free_port()}")
    assert refused.stderr.startswith("error: unreachable: nothing is listening at http://")
    for result in (no_scheme, tls_to_plain, refused):
        assert result.stderr.count("\n") == 1
        assert "UnsupportedProtocol" not in result.stderr and "_ssl.c" not in result.stderr
