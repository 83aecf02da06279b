"""The `keyquorum` command against a real server, as an operator or a script uses it."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keyquorum.cli.main import app

pytestmark = pytest.mark.server


@pytest.fixture
def run(shared_server):
    """Invoke the CLI in-process, with the server's address and root token in the env."""
    runner = CliRunner()
    env = {"KEYQUORUM_ADDR": shared_server.addr, "KEYQUORUM_TOKEN": shared_server.root_token}

    def invoke(*args: str, input: bytes | str | None = None, env_extra: dict | None = None):
        return runner.invoke(app, list(args), input=input, env={**env, **(env_extra or {})})

    return invoke


def fresh(prefix: str) -> str:
    return f"cli/{prefix}-{uuid.uuid4().hex[:8]}"


def test_encrypt_then_decrypt_through_stdin_and_stdout_with_context(run) -> None:
    name = fresh("enc")
    assert run("key", "create", name, "--spec", "aes-256-gcm").exit_code == 0
    plaintext = bytes(range(256)) + b"\n\r\x00"
    encrypted = run("encrypt", name, "--context", "tenant=acme", "-c", "field=pan",
                    input=plaintext)
    assert encrypted.exit_code == 0, encrypted.output
    ciphertext = encrypted.stdout.strip()
    assert ciphertext.startswith("kq1:")
    decrypted = run("decrypt", "-c", "field=pan", "--context", "tenant=acme", input=ciphertext)
    assert decrypted.exit_code == 0, decrypted.output
    assert decrypted.stdout_bytes == plaintext
    wrong = run("decrypt", "--context", "tenant=other", input=ciphertext)
    assert wrong.exit_code == 1
    assert wrong.stderr.startswith("error: invalid_ciphertext: ")
    assert wrong.stdout_bytes == b""


def test_shell_pipe_between_two_processes(shared_server, tmp_path: Path) -> None:
    env = {**os.environ, "KEYQUORUM_ADDR": shared_server.addr,
           "KEYQUORUM_TOKEN": shared_server.root_token}
    name = fresh("pipe")
    kq = [sys.executable, "-m", "keyquorum"]
    subprocess.run([*kq, "key", "create", name, "--spec", "chacha20-poly1305"], env=env,
                   check=True, capture_output=True)
    source = tmp_path / "in.bin"
    source.write_bytes(os.urandom(4096))
    encrypt = subprocess.Popen([*kq, "encrypt", name, str(source), "--context", "k=v"],
                               env=env, stdout=subprocess.PIPE)
    decrypt = subprocess.run([*kq, "decrypt", "--context", "k=v"], env=env,
                             stdin=encrypt.stdout, capture_output=True, check=False)
    assert encrypt.stdout is not None
    encrypt.stdout.close()
    assert encrypt.wait() == 0
    assert decrypt.returncode == 0, decrypt.stderr
    assert decrypt.stdout == source.read_bytes()


def test_decrypt_to_a_file_with_out(run, tmp_path: Path) -> None:
    name = fresh("out")
    run("key", "create", name, "--spec", "aes-256-gcm")
    ciphertext_file = tmp_path / "ct.txt"
    ciphertext_file.write_text(run("encrypt", name, "-", input=b"to a file").stdout)
    out = tmp_path / "plain.bin"
    result = run("decrypt", str(ciphertext_file), "--out", str(out))
    assert result.exit_code == 0 and result.stdout_bytes == b""
    assert out.read_bytes() == b"to a file"


def test_json_output_parses_for_scripts(run) -> None:
    name = fresh("json")
    created = json.loads(run("--json", "key", "create", name, "--spec", "ed25519",
                             "--label", "env=test").stdout)
    assert created["name"] == name and created["purpose"] == "sign"
    assert created["labels"] == {"env": "test"} and created["versions"][0]["version"] == 1
    shown = json.loads(run("--json", "key", "show", name).stdout)
    assert shown["id"] == created["id"]
    listed = json.loads(run("--json", "key", "list", "--prefix", "cli/").stdout)
    assert name in [k["name"] for k in listed["keys"]]
    encrypted = json.loads(run("--json", "encrypt", fresh("x"), input=b"x").stdout or "null")
    assert encrypted is None  # an error prints nothing on stdout, even with --json
    signed = json.loads(run("--json", "sign", name, input=b"msg").stdout)
    assert signed["key_version"] == 1 and base64.b64decode(signed["signature"])
    status = json.loads(run("--json", "operator", "status").stdout)
    assert status["initialized"] is True and status["sealed"] is False
    rand = json.loads(run("--json", "random", "12").stdout)
    assert len(base64.b64decode(rand["random"])) == 12


def test_errors_print_code_and_message_and_exit_non_zero(run, shared_server) -> None:
    missing = run("key", "show", "cli/does-not-exist")
    assert missing.exit_code == 1
    assert missing.stderr.strip().startswith("error: not_found: ")
    wrong_token = run("key", "list", env_extra={"KEYQUORUM_TOKEN": "nope"})
    assert wrong_token.exit_code == 1 and "error: unauthenticated: " in wrong_token.stderr
    usage = run("key", "create", fresh("u"))  # --spec missing
    assert usage.exit_code == 2
    bad_context = run("encrypt", "k", "--context", "novalue", input=b"x")
    assert bad_context.exit_code == 2
    dot_name = run("key", "show", "cli/../etc")
    assert dot_name.exit_code == 2 and dot_name.stderr.startswith("error: ")
    unreachable = run("key", "list", env_extra={"KEYQUORUM_ADDR": "http://127.0.0.1:9"})
    assert unreachable.exit_code == 1 and unreachable.stderr.startswith("error: unreachable: ")
    assert shared_server.root_token not in unreachable.output


def test_sign_and_verify_exit_status_follows_validity(run, tmp_path: Path) -> None:
    name = fresh("sig")
    run("key", "create", name, "--spec", "ecdsa-p256")
    message = tmp_path / "release.tar"
    message.write_bytes(b"release contents")
    signature = run("sign", name, str(message)).stdout.strip()
    good = run("verify", name, "--signature", signature, str(message))
    assert (good.exit_code, good.stdout.strip()) == (0, "valid")
    bad = run("verify", name, "--signature", signature, input=b"other contents")
    assert (bad.exit_code, bad.stdout.strip()) == (1, "invalid")
    digest = hashlib.sha256(b"release contents").hexdigest()
    by_digest = run("sign", name, "--digest", digest, "--hash", "sha256").stdout.strip()
    assert run("verify", name, "-s", by_digest, str(message)).exit_code == 0
    pem = run("key", "public-key", name)
    assert "BEGIN PUBLIC KEY" in pem.stdout


def test_rsa_pkcs1v15_signatures_from_the_cli(run) -> None:
    name = fresh("rsa")
    run("key", "create", name, "--spec", "rsa-2048")
    signature = run("sign", name, "--scheme", "pkcs1v15", input=b"m").stdout.strip()
    assert run("verify", name, "-s", signature, "--scheme", "pkcs1v15",
               input=b"m").exit_code == 0
    assert run("verify", name, "-s", signature, input=b"m").exit_code == 1  # PSS by default
    ec = fresh("ec")
    run("key", "create", ec, "--spec", "ecdsa-p521")
    refused = run("sign", ec, "--scheme", "pkcs1v15", input=b"m")
    assert refused.exit_code == 1 and "scheme applies to RSA keys only" in refused.output


def test_mac_and_verify_mac(run) -> None:
    name = fresh("mac")
    run("key", "create", name, "--spec", "hmac-sha256")
    tag = run("mac", name, input=b"payload").stdout.strip()
    assert run("verify-mac", name, "--mac", tag, input=b"payload").exit_code == 0
    assert run("verify-mac", name, "--mac", tag, input=b"payloaD").exit_code == 1


def test_key_lifecycle_commands(run) -> None:
    name = fresh("life")
    run("key", "create", name, "--spec", "aes-256-gcm", "--description", "first")
    old = run("encrypt", name, input=b"v1").stdout.strip()
    assert "primary version is now 2" in run("key", "rotate", name).stdout
    moved = run("reencrypt", input=old)
    assert moved.exit_code == 0
    assert run("decrypt", input=moved.stdout).stdout_bytes == b"v1"
    assert run("key", "disable", name, "--version", "1").exit_code == 0
    assert run("key", "enable", name, "--version", "1").exit_code == 0
    assert run("key", "disable", name).exit_code == 0
    refused = run("encrypt", name, input=b"x")
    assert refused.exit_code == 1 and "error: key_state: " in refused.stderr
    assert run("key", "enable", name).exit_code == 0
    updated = json.loads(run("--json", "key", "update", name, "--description", "second",
                             "--owner", "ops").stdout)
    assert (updated["description"], updated["owner"]) == ("second", "ops")
    assert run("key", "revoke", name, "--version", "1", "--reason", "compromised").exit_code == 0
    assert run("decrypt", input=old).exit_code == 1
    assert run("decrypt", "--unsafe-allow-compromised", input=old).stdout_bytes == b"v1"
    scheduled = run("--json", "key", "schedule-deletion", name, "--days", "7")
    assert json.loads(scheduled.stdout)["destroy_at"]
    assert json.loads(run("--json", "key", "cancel-deletion", name).stdout)["state"] != \
        "destroy-scheduled"
    shown = run("key", "show", name)
    assert shown.exit_code == 0 and name in shown.stdout and "versions" in shown.stdout


def test_datakey_and_random(run) -> None:
    name = fresh("dk")
    run("key", "create", name, "--spec", "aes-256-gcm")
    data_key = json.loads(run("--json", "datakey", name, "--context", "f=a").stdout)
    plaintext = base64.b64decode(data_key["plaintext"])
    unwrapped = run("decrypt", "--context", "f=a", input=data_key["ciphertext"])
    assert unwrapped.stdout_bytes == plaintext
    assert len(bytes.fromhex(run("random", "8", "--hex").stdout.strip())) == 8
    assert len(run("random", "8", "--raw").stdout_bytes) == 8
    assert run("random", "0").exit_code == 2


def test_tokens_and_policies(run, tmp_path: Path) -> None:
    key_name = fresh("pol")
    run("key", "create", key_name, "--spec", "aes-256-gcm")
    policy = f"cli-{uuid.uuid4().hex[:6]}"
    document = {"rules": [{"keys": key_name, "operations": ["encrypt"]}]}
    assert run("policy", "put", policy, "-", input=json.dumps(document)).exit_code == 0
    assert json.loads(run("--json", "policy", "get", policy).stdout)["rules"][0]["keys"] == \
        key_name
    assert policy in [p["name"] for p in json.loads(run("--json", "policy", "list").stdout)
                      ["policies"]]
    token = json.loads(run("--json", "token", "create", "--policy", policy, "--ttl", "1h",
                           "--name", "cli-app").stdout)
    as_app = {"KEYQUORUM_TOKEN": token["token"]}
    me = json.loads(run("--json", "token", "self", env_extra=as_app).stdout)
    assert me["accessor"] == token["accessor"] and policy in me["policies"]
    assert run("encrypt", key_name, input=b"ok", env_extra=as_app).exit_code == 0
    denied = run("key", "rotate", key_name, env_extra=as_app)
    assert denied.exit_code == 1 and "error: forbidden: " in denied.stderr
    assert run("token", "revoke", token["accessor"]).exit_code == 0
    assert run("token", "self", env_extra=as_app).exit_code == 1
    assert run("policy", "delete", policy).exit_code == 0
    assert run("policy", "get", policy).exit_code == 1
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert run("policy", "put", policy, str(bad)).exit_code == 2


def test_audit_list_filters(run) -> None:
    name = fresh("aud")
    run("key", "create", name, "--spec", "aes-256-gcm")
    run("encrypt", name, input=b"x")
    records = json.loads(run("--json", "audit", "list", "--key", name).stdout)["records"]
    assert {"create", "encrypt"} <= {r["operation"] for r in records}
    table = run("audit", "list", "--key", name, "--operation", "encrypt")
    assert table.exit_code == 0 and "encrypt" in table.stdout


def test_operator_init_unseal_seal(fresh_server) -> None:
    runner = CliRunner()
    env = {"KEYQUORUM_ADDR": fresh_server.addr}
    init = runner.invoke(app, ["--json", "operator", "init", "--shares", "3", "--threshold", "2"],
                         env=env)
    assert init.exit_code == 0, init.output
    body = json.loads(init.stdout)
    shares, root = body["shares"], body["root_token"]
    first = runner.invoke(app, ["operator", "unseal", shares[0]], env=env)
    assert first.exit_code == 0 and "1/2" in first.stdout
    second = runner.invoke(app, ["operator", "unseal"], input=shares[1] + "\n", env=env)
    assert second.exit_code == 0 and "unsealed" in second.stdout
    sealed = runner.invoke(app, ["operator", "seal"], env={**env, "KEYQUORUM_TOKEN": root})
    assert sealed.exit_code == 0 and "sealed" in sealed.stdout
    refused = runner.invoke(app, ["key", "list"], env={**env, "KEYQUORUM_TOKEN": root})
    assert refused.exit_code == 1 and "error: sealed: " in refused.stderr


def test_operator_init_warns_loudly_and_prints_shares_once(fresh_server) -> None:
    result = CliRunner().invoke(app, ["operator", "init", "--shares", "2", "--threshold", "2",
                                      "--force", "--custodian", "ana", "--custodian", "bo"],
                                env={"KEYQUORUM_ADDR": fresh_server.addr})
    assert result.exit_code == 0, result.output
    assert "WARNING" in result.stderr and "ONCE" in result.stderr
    assert "Unseal share 1 (ana): " in result.stdout and "Root token: " in result.stdout


def test_global_flags_may_follow_the_command() -> None:
    from keyquorum.cli.main import hoist_global_flags

    assert hoist_global_flags(["key", "show", "k", "--json"]) == ["--json", "key", "show", "k"]
    assert hoist_global_flags(["--json", "key", "list"]) == ["--json", "key", "list"]
    assert hoist_global_flags(["encrypt", "k", "--", "--json"]) == ["encrypt", "k", "--", "--json"]


def test_server_strings_are_printed_as_text_never_as_rich_markup(run) -> None:
    name = fresh("markup")
    owner = "[red]mallory[/red] [link=http://x]y[/link]"
    assert run("key", "create", name, "--spec", "aes-256-gcm", "--owner", owner).exit_code == 0
    shown = run("key", "show", name)
    assert shown.exit_code == 0 and owner in shown.stdout
    listed = run("key", "list", "--prefix", name)
    assert listed.exit_code == 0 and "[red]mallory" in listed.stdout.replace("\n", "")
