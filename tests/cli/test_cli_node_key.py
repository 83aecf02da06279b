"""``keyquorum operator seals node-key``: a node's key pair, honouring --json, never overwritten."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from typer.testing import CliRunner

from keyquorum.cli.main import app


def test_node_key_writes_a_private_pair_answers_json_and_never_overwrites(
        tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "node.key"
    made = runner.invoke(app, ["--json", "operator", "seals", "node-key", "--out", str(out)])
    assert made.exit_code == 0, made.output
    answer = json.loads(made.stdout)
    assert answer["private_key_file"] == str(out)
    assert answer["public_key_file"] == str(tmp_path / "node.key.pub")
    assert answer["fingerprint"] and answer["fingerprint"] in made.stdout
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "PRIVATE KEY" in out.read_text() and "PUBLIC KEY" in Path(
        answer["public_key_file"]).read_text()
    before = out.read_bytes()
    again = runner.invoke(app, ["operator", "seals", "node-key", "--out", str(out)])
    assert again.exit_code == 2 and again.stderr.count("\n") == 1  # one line, no traceback
    assert "never overwritten" in again.stderr and out.read_bytes() == before
    human = runner.invoke(app, ["operator", "seals", "node-key", "--out",
                                str(tmp_path / "other.key")])
    assert human.exit_code == 0 and human.stdout.startswith("private key: ")
