"""A plain ``encrypt`` or ``decrypt`` skips Typer and prints what the Typer command prints.

Each case runs twice: through the real entry point in a child process (as a shell
script runs ``keyquorum``), which records whether Typer was imported, and through
the Typer app in process (the reference every other CLI test uses). The two must
agree on exit status, stdout (ciphertexts are random: they are compared by what
they decrypt to) and stderr; and the road taken must be the one expected, so a
shortcut that silently always fell back to Typer fails here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keyquorum.cli.main import app, hoist_global_flags
from keyquorum.cli.shortcut import parse
from kq_support import ServerProcess

PROBE = ("import atexit, os, sys\n"
         "atexit.register(lambda: open(os.environ['ROAD'], 'w').write("
         "'typer' if 'typer' in sys.modules else 'shortcut'))\n"
         "from keyquorum.cli.main import run\n"
         "run()\n")
"""The ``keyquorum`` console script, plus a note of whether Typer was ever imported."""


@pytest.mark.parametrize("argv", [
    ["encrypt", "k"],
    ["encrypt", "k", "-"],
    ["encrypt", "k", "in.bin", "-c", "a=b", "--context", "c=d", "--context=e=f=g"],
    ["--json", "--tls-skip-verify", "--addr", "http://h:1", "--token=t", "encrypt", "k"],
    ["--ca-cert", "ca.pem", "decrypt"],
    ["decrypt", "ct.txt", "--key", "k", "-c", "a=b"],
    ["decrypt", "--key=k"],
])
def test_the_plain_forms_take_the_shortcut(argv: list[str]) -> None:
    assert parse(argv) is not None


@pytest.mark.parametrize("argv", [
    [],
    ["key", "list"],
    ["encrypt"],  # KEY missing: Typer's usage error
    ["encrypt", "k", "in", "extra"],
    ["encrypt", "k", "--help"],
    ["encrypt", "k", "-h"],
    ["--help", "encrypt"],
    ["encrypt", "--", "k"],
    ["encrypt", "k", "--context"],  # no value
    ["encrypt", "k", "-c", "-x"],  # a value that looks like an option
    ["encrypt", "k", "-ca=b"],  # attached short values are Typer's
    ["encrypt", "k", "--addr", "http://h:1"],  # a global option after the command
    ["encrypt", "k", "--key", "k2"],  # decrypt's option
    ["--addr", "a", "--addr", "b", "encrypt", "k"],
    ["--addr", "encrypt", "k"],
    ["decrypt", "--key", "a", "--key", "b"],
    ["decrypt", "--out", "plain.bin"],
    ["decrypt", "--unsafe-allow-compromised"],
    ["decrypt", "a", "b"],
    ["sign", "k"],
])
def test_everything_else_is_left_to_typer(argv: list[str]) -> None:
    assert parse(argv) is None


@pytest.fixture(scope="module")
def key(shared_server: ServerProcess) -> str:
    name = f"cli/shortcut-{uuid.uuid4().hex[:8]}"
    made = CliRunner().invoke(app, ["key", "create", name, "--spec", "aes-256-gcm"], env={
        "KEYQUORUM_ADDR": shared_server.addr, "KEYQUORUM_TOKEN": shared_server.root_token})
    assert made.exit_code == 0, made.output
    return name


class Both:
    """Runs one command line through the console script and through the Typer app."""

    def __init__(self, server: ServerProcess, tmp_path: Path) -> None:
        self.env = {"KEYQUORUM_ADDR": server.addr, "KEYQUORUM_TOKEN": server.root_token,
                    "KEYQUORUM_TOKEN_FILE": str(tmp_path / "no-token-file")}
        self.tmp_path = tmp_path

    def script(self, argv: list[str], stdin: bytes, env: dict[str, str | None]
               ) -> tuple[int, bytes, str, str]:
        road = self.tmp_path / f"road-{uuid.uuid4().hex}"
        merged = {**os.environ, **self.env, **env, "ROAD": str(road)}
        child = subprocess.run([sys.executable, "-c", PROBE, *argv], input=stdin,
                               capture_output=True, timeout=60, check=False,
                               env={k: v for k, v in merged.items() if v is not None})
        return child.returncode, child.stdout, child.stderr.decode(), road.read_text()

    def typer(self, argv: list[str], stdin: bytes, env: dict[str, str | None]
              ) -> tuple[int, bytes, str]:
        result = CliRunner().invoke(app, hoist_global_flags(argv), input=stdin,
                                    env={**self.env, **env})
        return result.exit_code, result.stdout_bytes, result.stderr

    def run(self, argv: list[str], stdin: bytes = b"", road: str = "shortcut",
            env: dict[str, str | None] | None = None) -> tuple[int, bytes, str]:
        """Both results, checked to agree but for the ciphertext; the script's is returned."""
        status, out, err, taken = self.script(argv, stdin, env or {})
        assert taken == road, (argv, err)
        reference = self.typer(argv, stdin, env or {})
        assert (status, err) == (reference[0], reference[2]), argv
        if out.startswith(b"kq1:") or b'"ciphertext"' in out:  # random: compare the meaning
            assert self.opened(out) == self.opened(reference[1]), argv
            assert len(out) == len(reference[1]), argv  # and the layout, byte for byte
        else:
            assert out == reference[1], argv
        return status, out, err

    def opened(self, out: bytes) -> tuple[bytes, object]:
        """What an encrypt's output decrypts to (under the context a=b, if it has one)."""
        text = out.decode()
        shape: object = "text"
        if text.startswith("{"):
            answer = json.loads(text)
            shape = sorted(answer)
            text = answer["ciphertext"]
        for context in ([], ["-c", "a=b"]):
            done = self.typer(["decrypt", *context], text.encode(), {})
            if done[0] == 0:
                return done[1], shape
        raise AssertionError(f"neither context opens {text!r}")


@pytest.fixture
def both(shared_server: ServerProcess, tmp_path: Path) -> Both:
    return Both(shared_server, tmp_path)


def test_encrypt_on_the_shortcut_prints_what_typer_prints(
        both: Both, key: str, tmp_path: Path) -> None:
    source = tmp_path / "in.bin"
    source.write_bytes(bytes(range(256)))
    status, out, _ = both.run(["encrypt", key], b"from stdin\x00\xff")
    assert status == 0 and out.startswith(b"kq1:") and out.endswith(b"\n")
    both.run(["encrypt", key, str(source), "-c", "a=b"])
    both.run(["encrypt", "--json", key, "-", "--context=a=b"], b"json")  # --json hoisted
    both.run(["encrypt", key, str(source), "--addr", "x"], road="typer")  # Typer's usage error


def test_decrypt_on_the_shortcut_prints_what_typer_prints(
        both: Both, key: str, tmp_path: Path) -> None:
    plain = bytes(range(256)) + b"\r\n"
    ciphertext = both.typer(["encrypt", key, "-c", "a=b"], plain, {})[1]
    (tmp_path / "ct.txt").write_bytes(ciphertext)
    status, out, _ = both.run(["decrypt", "-c", "a=b"], ciphertext)
    assert status == 0 and out == plain  # raw bytes, no newline added
    both.run(["decrypt", str(tmp_path / "ct.txt"), "--context", "a=b", "--key", key])
    status, out, _ = both.run(["--json", "decrypt", "-c", "a=b"], ciphertext)
    assert json.loads(out)["key_version"] == 1
    both.run(["decrypt", "-c", "a=b", "--out", str(tmp_path / "p.bin")], ciphertext,
             road="typer")


def test_errors_on_the_shortcut_are_typers_lines(both: Both, key: str, tmp_path: Path) -> None:
    ciphertext = both.typer(["encrypt", key, "-c", "a=b"], b"x", {})[1]
    status, _, err = both.run(["decrypt", "-c", "a=other"], ciphertext)
    assert status == 1 and err.startswith("error: invalid_ciphertext: ")
    status, _, err = both.run(["decrypt", "-c", "a=b", "--key", "cli/another-key"], ciphertext)
    assert status == 1 and err.startswith("error: ")
    status, _, err = both.run(["encrypt", "cli/no-such-key"], b"x")
    assert status == 1 and err.startswith("error: not_found: ")
    status, _, err = both.run(["encrypt", "cli/../etc"], b"x")  # the SDK refuses it: 2
    assert status == 2 and err.startswith("error: invalid_argument: ")
    status, _, err = both.run(["encrypt", key], b"x", env={"KEYQUORUM_TOKEN": "kq_wrong"})
    assert status == 1 and err.startswith("error: unauthenticated: ")
    status, _, err = both.run(["--addr", "http://127.0.0.1:9", "encrypt", key], b"x")
    assert status == 1 and "nothing is listening at http://127.0.0.1:9" in err
    status, _, err = both.run(["--addr", "127.0.0.1:9", "encrypt", key], b"x")
    assert status == 1 and "has no scheme" in err


def test_what_the_shortcut_cannot_answer_goes_to_typer_with_its_input(
        both: Both, key: str, tmp_path: Path) -> None:
    status, _, err = both.run(["encrypt", key, "-c", "novalue"], b"x", road="typer")
    assert status == 2 and "--context takes key=value" in err
    status, _, err = both.run(["encrypt", key, str(tmp_path / "missing")], road="typer")
    assert status == 2 and "cannot read" in err
    status, _, err = both.run(["decrypt"], b"\xff\xfe not text", road="typer")  # stdin replayed
    assert status == 2 and "the input must be UTF-8 text" in err
    token_file = tmp_path / "token"
    token_file.write_text("kq_whatever\n")
    token_file.chmod(0o644)
    status, _, err = both.run(["encrypt", key], b"x", road="typer", env={
        "KEYQUORUM_TOKEN": None, "KEYQUORUM_TOKEN_FILE": str(token_file)})
    assert status == 1 and err.startswith("error: token_file: the token file ")
    assert "chmod 600" in err


def test_the_token_file_is_used_when_no_token_is_given(
        both: Both, key: str, shared_server: ServerProcess, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(shared_server.root_token + "\n")
    token_file.chmod(0o600)
    status, out, _ = both.run(["encrypt", key], b"x", env={
        "KEYQUORUM_TOKEN": None, "KEYQUORUM_TOKEN_FILE": str(token_file)})
    assert status == 0 and out.startswith(b"kq1:")
