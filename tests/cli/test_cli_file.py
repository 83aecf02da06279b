"""`keyquorum file encrypt/decrypt` against a real server: files, pipes, ranges, damage."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from envelope.envelope_fakes import PatternSource, VerifyingSink
from keyquorum.cli import files as file_commands
from keyquorum.cli.main import app
from keyquorum.envelope import read_header

pytestmark = pytest.mark.server


@pytest.fixture
def run(shared_server):
    runner = CliRunner()
    env = {"KEYQUORUM_ADDR": shared_server.addr, "KEYQUORUM_TOKEN": shared_server.root_token}

    def invoke(*args: str, input: bytes | None = None):
        return runner.invoke(app, list(args), input=input, env=env)

    return invoke


@pytest.fixture
def key(run) -> str:
    name = f"cli/file-{uuid.uuid4().hex[:8]}"
    assert run("key", "create", name, "--spec", "aes-256-gcm").exit_code == 0
    return name


def test_files_round_trip_with_two_keys_and_a_context(run, key, tmp_path: Path) -> None:
    recovery = key + "-dr"
    assert run("key", "create", recovery, "--spec", "aes-256-gcm").exit_code == 0
    source, sealed, back = tmp_path / "in.bin", tmp_path / "in.kqs", tmp_path / "out.bin"
    source.write_bytes(os.urandom(300_000))
    done = run("file", "encrypt", str(source), str(sealed), "--key", key, "--key", recovery,
               "-c", "tenant=acme", "--segment-size", "64KiB")
    assert done.exit_code == 0, done.output
    assert done.stdout == "" and done.stderr == ""  # quiet when not on a terminal
    header = read_header(io.BytesIO(sealed.read_bytes()))
    assert header.key_names == (key, recovery) and header.segment_size == 65536
    opened = run("file", "decrypt", str(sealed), str(back), "--context", "tenant=acme")
    assert opened.exit_code == 0, opened.output
    assert back.read_bytes() == source.read_bytes()


def test_stdin_to_stdout_both_ways(run, key) -> None:
    data = os.urandom(70_000)
    sealed = run("file", "encrypt", "-", "-", "--key", key, "--segment-size", "4096",
                 input=data)
    assert sealed.exit_code == 0, sealed.stderr
    assert sealed.stdout_bytes.startswith(b"KQST")
    opened = run("file", "decrypt", "-", "-", input=sealed.stdout_bytes)
    assert opened.exit_code == 0 and opened.stdout_bytes == data


def test_range_reads_a_slice(run, key, tmp_path: Path) -> None:
    source, sealed = tmp_path / "in.bin", tmp_path / "in.kqs"
    source.write_bytes(os.urandom(50_000))
    run("file", "encrypt", str(source), str(sealed), "--key", key, "--segment-size", "1KiB")
    for spec, expected in (("1000:5000", slice(1000, 5000)), ("49000:", slice(49000, None)),
                           (":10", slice(0, 10)), ("60000:70000", slice(0, 0))):
        out = run("file", "decrypt", str(sealed), "-", "--range", spec)
        assert out.exit_code == 0, out.stderr
        assert out.stdout_bytes == source.read_bytes()[expected], spec
    bad = run("file", "decrypt", str(sealed), "-", "--range", "5:1")
    assert bad.exit_code == 2 and "--range" in bad.output


def test_range_from_a_pipe_is_a_usage_error(shared_server, run, key) -> None:
    sealed = run("file", "encrypt", "-", "-", "--key", key, input=b"abc").stdout_bytes
    env = {**os.environ, "KEYQUORUM_ADDR": shared_server.addr,
           "KEYQUORUM_TOKEN": shared_server.root_token}
    out = subprocess.run([sys.executable, "-m", "keyquorum", "file", "decrypt", "-", "-",
                          "--range", "0:1"], input=sealed, capture_output=True, env=env,
                         check=False)
    assert out.returncode == 2 and out.stdout == b""
    assert out.stderr.startswith(b"error: invalid_argument: decrypt_range needs a seekable")


def test_truncated_file_fails_and_leaves_the_destination_alone(run, key, tmp_path: Path) -> None:
    source, sealed, back = tmp_path / "in.bin", tmp_path / "in.kqs", tmp_path / "out.bin"
    source.write_bytes(os.urandom(20_000))
    run("file", "encrypt", str(source), str(sealed), "--key", key, "--segment-size", "4096")
    sealed.write_bytes(sealed.read_bytes()[:-4096 - 16])  # cut at a segment boundary
    back.write_bytes(b"old")
    out = run("file", "decrypt", str(sealed), str(back))
    assert out.exit_code == 1
    assert out.stderr == ("error: invalid_ciphertext: encrypted stream is invalid, incomplete "
                          "or does not match the context\n")
    assert back.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.bin", "in.kqs", "out.bin"]


def test_truncated_pipe_fails_after_releasing_only_whole_good_segments(run, key) -> None:
    data = os.urandom(5 * 4096 + 100)
    sealed = run("file", "encrypt", "-", "-", "--key", key, "--segment-size", "4096",
                 input=data).stdout_bytes
    out = run("file", "decrypt", "-", "-", input=sealed[:-50])
    assert out.exit_code == 1 and "invalid_ciphertext" in out.stderr
    assert out.stdout_bytes == data[:5 * 4096]


def test_wrong_context_and_unknown_key(run, key, tmp_path: Path) -> None:
    sealed = run("file", "encrypt", "-", "-", "--key", key, "-c", "a=1", input=b"x").stdout_bytes
    wrong = run("file", "decrypt", "-", "-", "-c", "a=2", input=sealed)
    assert wrong.exit_code == 1 and wrong.stderr.startswith("error: invalid_ciphertext")
    missing = run("file", "encrypt", "-", str(tmp_path / "o"), "--key", "cli/nope", input=b"x")
    assert missing.exit_code == 1 and missing.stderr.startswith("error: not_found")
    assert not (tmp_path / "o").exists()


def test_json_summary(run, key, tmp_path: Path) -> None:
    source = tmp_path / "in.bin"
    source.write_bytes(b"z" * 5000)
    out = run("--json", "file", "encrypt", str(source), str(tmp_path / "o.kqs"), "--key", key,
              "-c", "k=v", "--segment-size", "1024")
    summary = json.loads(out.stdout)
    assert summary["plaintext_size"] == 5000 and summary["segments"] == 5
    assert summary["keys"] == [key] and summary["context"] == {"k": "v"}


def test_bad_segment_size_is_a_usage_error(run, key) -> None:
    for size in ("lots", "8"):
        out = run("file", "encrypt", "-", "-", "--key", key, "--segment-size", size, input=b"")
        assert out.exit_code == 2, size


def test_progress_bar_with_throughput_on_a_terminal_and_not_with_quiet(
        run, key, tmp_path: Path, monkeypatch) -> None:
    screen = io.StringIO()
    monkeypatch.setattr(file_commands, "err_console",
                        lambda: Console(file=screen, force_terminal=True, width=120))
    source = tmp_path / "in.bin"
    source.write_bytes(os.urandom(3 << 20))
    out = run("file", "encrypt", str(source), str(tmp_path / "o.kqs"), "--key", key)
    assert out.exit_code == 0
    shown = screen.getvalue()
    assert "encrypt" in shown and "/s" in shown and "3.1 MB" not in shown  # binary units
    assert "MB/s), key " + key in shown  # the closing summary line
    screen.truncate(0)
    screen.seek(0)
    quiet = run("file", "decrypt", str(tmp_path / "o.kqs"), str(tmp_path / "b"), "--quiet")
    assert quiet.exit_code == 0 and screen.getvalue() == ""


# ``python -m keyquorum`` that records its own peak RSS (VmHWM) in $KQ_PEAK_FILE at exit.
# wait4's ru_maxrss cannot be used: Linux carries a child's maximum across fork and
# exec, so every child of a big pytest worker would report the worker's size.
MEASURED_KEYQUORUM = """
import atexit, os, runpy, sys
def record():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            open(os.environ["KQ_PEAK_FILE"], "w").write(line.split()[1])
atexit.register(record)
sys.argv[0] = "keyquorum"
runpy.run_module("keyquorum", run_name="__main__", alter_sys=True)
"""

GENERATE = """
import sys
sys.path.insert(0, {tests!r})
from envelope.envelope_fakes import PatternSource
source = PatternSource({size}, seed=b"keyquorum")
out = sys.stdout.buffer
buf = bytearray(1 << 20)
while (n := source.readinto(buf)):
    out.write(memoryview(buf)[:n])
"""


def test_one_gib_shell_pipeline_in_flat_memory(shared_server, key, tmp_path: Path) -> None:
    """gen | keyquorum file encrypt - - | keyquorum file decrypt - - | (checked here)."""
    size = (1 << 30) + 7
    env = {**os.environ, "KEYQUORUM_ADDR": shared_server.addr,
           "KEYQUORUM_TOKEN": shared_server.root_token}
    kq = [sys.executable, "-c", MEASURED_KEYQUORUM, "file"]
    tests = str(Path(__file__).resolve().parent.parent)
    gen = subprocess.Popen([sys.executable, "-c", GENERATE.format(tests=tests, size=size)],
                           stdout=subprocess.PIPE)
    enc = subprocess.Popen([*kq, "encrypt", "-", "-", "--key", key, "-c", "job=pipe"],
                           stdin=gen.stdout, stdout=subprocess.PIPE,
                           env={**env, "KQ_PEAK_FILE": str(tmp_path / "encrypt.kib")})
    dec = subprocess.Popen([*kq, "decrypt", "-", "-", "-c", "job=pipe"], stdin=enc.stdout,
                           stdout=subprocess.PIPE,
                           env={**env, "KQ_PEAK_FILE": str(tmp_path / "decrypt.kib")})
    assert gen.stdout is not None and enc.stdout is not None and dec.stdout is not None
    gen.stdout.close()
    enc.stdout.close()
    sink = VerifyingSink(PatternSource(size, seed=b"keyquorum"))
    while chunk := dec.stdout.read(1 << 20):
        sink.write(chunk)
    for name, proc in (("gen", gen), ("encrypt", enc), ("decrypt", dec)):
        assert proc.wait() == 0, name
    assert (sink.position, sink.mismatch) == (size, None)
    peaks = {name: int((tmp_path / f"{name}.kib").read_text()) // 1024
             for name in ("encrypt", "decrypt")}  # MiB
    # A keyquorum CLI process is ~70 MiB of Python and libraries before any data;
    # 1 GiB through it must not add more than a few segments.
    assert peaks["encrypt"] < 120 and peaks["decrypt"] < 120, peaks
