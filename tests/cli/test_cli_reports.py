"""`keyquorum report` and the SDK's report and metrics calls against a real server."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keyquorum.cli.main import app
from keyquorum.client import Client, ForbiddenError
from kq_support import ServerProcess

pytestmark = pytest.mark.server


@pytest.fixture
def run(shared_server: ServerProcess):
    runner = CliRunner()
    env = {"KEYQUORUM_ADDR": shared_server.addr, "KEYQUORUM_TOKEN": shared_server.root_token,
           "COLUMNS": "250"}

    def invoke(*args: str):
        return runner.invoke(app, list(args), env=env)

    return invoke


def test_inventory_table_and_json_show_each_key_with_its_flags(run) -> None:
    name = f"clirep/{uuid.uuid4().hex[:8]}"
    assert run("key", "create", name, "--spec", "aes-256-gcm").exit_code == 0
    result = run("report", "inventory")
    assert result.exit_code == 0, result.output
    assert name in result.stdout and "no_owner" in result.stdout
    as_json = run("--json", "report", "inventory")
    keys = {k["name"]: k for k in json.loads(as_json.stdout)["keys"]}
    assert keys[name]["flags"] == ["no_owner"]


def test_owner_markup_is_not_interpreted(run, shared_server: ServerProcess) -> None:
    name = f"clirep/{uuid.uuid4().hex[:8]}"
    with Client(shared_server.addr, shared_server.root_token) as sdk:
        sdk.create_key(name, "aes-256-gcm", owner="[bold red]mallory[/bold red]")
    result = run("report", "inventory")
    assert result.exit_code == 0, result.output
    assert "[bold red]mallory[/bold red]" in result.stdout


def test_compliance_table_json_and_html_file(run, tmp_path: Path) -> None:
    result = run("report", "compliance")
    assert result.exit_code == 0, result.output
    assert "3.7.4" in result.stdout and "attention" in result.stdout
    body = json.loads(run("--json", "report", "compliance").stdout)
    assert {c["id"] for c in body["controls"]} >= {"pci-3.6.1", "pci-3.7.9", "nist-rotation"}
    out = tmp_path / "compliance.html"
    saved = run("report", "compliance", "--html", str(out))
    assert saved.exit_code == 0, saved.output
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert "keyquorum compliance report" in out.read_text()


def test_sdk_reports_and_metrics(shared_server: ServerProcess) -> None:
    with Client(shared_server.addr, shared_server.root_token) as sdk:
        assert sdk.inventory_report()["summary"]["keys"] >= 0
        assert sdk.compliance_report()["controls"]
        assert "<h1>keyquorum key inventory</h1>" in sdk.inventory_report_html()
        assert "<h1>keyquorum compliance report</h1>" in sdk.compliance_report_html()
        assert "keyquorum_keys{" in sdk.metrics()
        auditor = sdk.create_token(["auditor"]).token
    with Client(shared_server.addr, auditor) as limited:
        assert limited.inventory_report()["keys"] is not None
        with pytest.raises(ForbiddenError):
            limited.metrics()


def test_crypto_period_through_the_cli_and_the_sdk(run, shared_server: ServerProcess) -> None:
    name = f"clirep/{uuid.uuid4().hex[:8]}"
    created = run("key", "create", name, "--spec", "ed25519", "--crypto-period", "180d")
    assert created.exit_code == 0, created.output
    assert "15552000" in created.stdout
    assert run("key", "update", name, "--crypto-period", "90d").exit_code == 0
    with Client(shared_server.addr, shared_server.root_token) as sdk:
        assert sdk.get_key(name).crypto_period == 90 * 86400
        other = sdk.create_key(f"{name}-sdk", "hmac-sha256", crypto_period="400d")
        assert other.crypto_period == 400 * 86400
        assert sdk.update_key(other.name, crypto_period=86400 * 30).crypto_period == 30 * 86400
        assert sdk.create_key(f"{name}-dflt", "hmac-sha256").crypto_period is None
