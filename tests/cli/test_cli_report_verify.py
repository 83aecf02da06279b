"""`keyquorum report verify FILE`: a saved report is checked offline against the audit key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keyquorum.cli.main import app
from kq_support import ServerProcess

pytestmark = pytest.mark.server


def test_saved_reports_verify_offline_and_an_edit_is_caught(
        shared_server: ServerProcess, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"KEYQUORUM_ADDR": shared_server.addr, "KEYQUORUM_TOKEN": shared_server.root_token}
    page, pem, saved = tmp_path / "c.html", tmp_path / "audit.pem", tmp_path / "inv.json"
    assert runner.invoke(app, ["report", "compliance", "--html", str(page)], env=env
                         ).exit_code == 0
    assert runner.invoke(app, ["audit", "export", "--out", str(tmp_path / "a.jsonl"),
                               "--public-key-out", str(pem)], env=env).exit_code == 0
    saved.write_text(runner.invoke(app, ["--json", "report", "inventory"], env=env).stdout)

    offline = {"KEYQUORUM_ADDR": "http://127.0.0.1:9"}  # no server needed
    for report in (page, saved):
        checked = runner.invoke(app, ["report", "verify", str(report), "--public-key", str(pem)],
                                env=offline)
        assert checked.exit_code == 0, checked.output
        assert checked.stdout.startswith("ok: signed by the audit key ")
        assert "audit chain head record" in checked.stdout and "not pinned" not in checked.stdout
    as_json = json.loads(runner.invoke(app, ["--json", "report", "verify", str(page)],
                                       env=offline).stdout)
    assert as_json["ok"] is True and as_json["pinned"] is False

    page.write_text(page.read_text().replace("PASS", "pass").replace("attention", "pass"))
    tampered = runner.invoke(app, ["report", "verify", str(page), "--public-key", str(pem)],
                             env=offline)
    assert tampered.exit_code == 1
    assert tampered.stderr.startswith("error: invalid_signature: the signature does not match")
