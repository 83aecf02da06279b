"""README.md runs as written: every shell and Python block, in order, on a fresh machine.

Like a newcomer: an empty home directory and working directory, this tree
installed with ``pip install .``, then every block in the README's order, the
foreground ones in one shell session (variables a block exports are seen by the
blocks after it, the Python ones included). A block is one of three kinds, and
README.md says which in a comment above it that this test reads:

- unmarked: run as written;
- ``<!-- tests/test_readme.py runs this block in the background ... -->``: a
  server, which the README runs in a shell of its own ("in another shell"): it is
  started in a fresh shell (the environment a new terminal has, not the session's
  exports), waited for on its ``--listen`` port, and stopped at the end;
- ``<!-- tests/test_readme.py runs the equivalent ... -->``: only the first block
  (``pip install . && keyquorum dev``; ``scripts/test``). pip installs this tree
  into a throwaway directory, never into the environment running the test, and
  every later block runs that installed ``keyquorum`` and package (``PATH``,
  ``PYTHONPATH``); ``keyquorum dev`` runs from it in the background; and
  ``scripts/test`` is the suite this test belongs to, so running it here would
  recurse: it is checked to be executable, to parse, and to be what CI runs.

The changes made to the text: the servers listen on free ports instead of 8200
(dev) and 8300 (the TLS server), as this machine is shared, so ``127.0.0.1:8200``
and ``:8300`` are read as those ports and ``KEYQUORUM_ADDR`` points at the dev
server from the start; and ``/var/lib/`` is a directory of the test's own.

What the README's reader brings and the test provides, as their machine would:
the TLS server's certificate and its CA (``server.crt``, ``server.key``,
``ca.crt`` in the working directory); an AWS account holding the KMS key
``alias/kq-root`` in eu-west-1 (a moto server, reached through ``~/.aws/config``
and ``~/.aws/credentials``, the standard chain the README names); and SoftHSM2,
with a token directory of the test's own (``SOFTHSM2_CONF``).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kq_support import free_port
from readme_support import ROOT, aws_account, pip_install_tree, write_softhsm_conf, write_tls

README = ROOT / "README.md"
_BLOCK = re.compile(
    r"(?:<!-- (?:not run by tests/test_readme\.py: (?P<why>[^>]*?)|tests/test_readme\.py "
    r"(?P<how>runs this block in the background|runs the equivalent)[^>]*?) -->\n)?"
    r"^```(?P<lang>sh|python)\n(?P<body>.*?)^```", re.S | re.M)
INSTALL_BLOCK = ["pip install . && keyquorum dev", "scripts/test"]
"""The first block's commands: what the equivalent stands for (comments left out)."""


def blocks() -> list[tuple[str, str, str | None]]:
    """``(lang, body, kind)``; kind is None, ``background``, ``equivalent`` or ``not run``."""
    found = []
    for match in _BLOCK.finditer(README.read_text()):
        how = match["how"] or ""
        kind = ("not run" if match["why"] is not None else "background"
                if how.endswith("background") else "equivalent" if how else None)
        found.append((match["lang"], match["body"], kind))
    return found


def commands(body: str) -> list[str]:
    """A shell block's commands, comments and blank lines left out, continuations joined."""
    text = re.sub(r"\\\n\s*", " ", body)
    return [line.split("  #")[0].strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_every_block_runs_and_the_install_block_is_the_one_run_by_an_equivalent() -> None:
    found = blocks()
    assert [kind for _lang, _body, kind in found].count("not run") == 0
    equivalents = [body for _lang, body, kind in found if kind == "equivalent"]
    assert equivalents == [found[0][1]] and commands(found[0][1]) == INSTALL_BLOCK
    background = [body for _lang, body, kind in found if kind == "background"]
    assert len(background) == 1 and "keyquorum server" in background[0]
    assert sum(1 for _l, _b, kind in found if kind is None) >= 12


def test_scripts_test_is_what_ci_runs_and_parses() -> None:
    script = ROOT / "scripts" / "test"
    assert os.access(script, os.X_OK)
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    assert "exec scripts/test" in (ROOT / ".ci" / "run").read_text()


def _environment(dump: bytes) -> dict[str, str]:
    pairs = (item.split(b"=", 1) for item in dump.split(b"\0") if b"=" in item)
    return {k.decode(): v.decode() for k, v in pairs}


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens on {port}: see {log}"
            time.sleep(0.1)


class Machine:
    """The reader's machine: the session's environment and the processes left running."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.home, self.work = tmp_path / "home", tmp_path / "work"
        self.home.mkdir()
        self.work.mkdir()
        (tmp_path / "var" / "lib").mkdir(parents=True)
        self.dev_port, self.tls_port = free_port(), free_port()
        self.background: list[subprocess.Popen[bytes]] = []

    def text(self, body: str) -> str:
        return (body.replace("127.0.0.1:8200", f"127.0.0.1:{self.dev_port}")
                .replace(":8300", f":{self.tls_port}")
                .replace("/var/lib/", f"{self.tmp_path}/var/lib/"))

    def start(self, command: list[str], env: dict[str, str], name: str) -> None:
        """A process left running in its own session (stopped, with its children, at the end)."""
        log = self.tmp_path / f"{name}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(command, cwd=self.work, env=env, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self.background.append(process)
        port = int(re.findall(r"--listen\s+\S+?:(\d+)", " ".join(command))[-1])
        _wait_listening(port, process, log)

    def stop(self) -> None:
        for process in reversed(self.background):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.background:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[Machine]:
    made = Machine(tmp_path)
    try:
        yield made
    finally:
        made.stop()


@pytest.mark.server
def test_the_readme_runs_as_written(machine: Machine, tmp_path: Path) -> None:
    installed = pip_install_tree(tmp_path)
    write_tls(machine.work)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KEYQUORUM_", "AWS_", "BAO_", "VAULT_", "SOFTHSM2_"))}
    env.update(HOME=str(machine.home), KEYQUORUM_ADDR=f"http://127.0.0.1:{machine.dev_port}",
               SOFTHSM2_CONF=str(write_softhsm_conf(tmp_path / "softhsm")),
               PYTHONPATH=str(installed), PATH=os.pathsep.join(
                   [str(installed / "bin"), str(Path(sys.executable).parent),
                    env.get("PATH", "")]))
    fresh_shell = dict(env)  # what a new terminal on this machine has
    probe = subprocess.run([sys.executable, "-c", "import keyquorum; print(keyquorum.__file__)"],
                           env=env, capture_output=True, text=True, check=True)
    assert probe.stdout.startswith(str(installed)), probe.stdout  # the install, not the tree
    dump = tmp_path / "env"
    with aws_account(machine.home, tmp_path, "eu-west-1", "alias/kq-root"):
        for index, (lang, body, kind) in enumerate(blocks()):
            text = machine.text(body)
            if kind == "equivalent":  # pip install . (done above) && keyquorum dev
                machine.start(["keyquorum", "dev", "--listen", f"127.0.0.1:{machine.dev_port}"],
                              env, "dev")
                assert httpx.get(f"http://127.0.0.1:{machine.dev_port}/v1/sys/health",
                                 timeout=10).status_code == 200
                continue
            if kind == "background":
                machine.start(["bash", "-e", "-c", text], fresh_shell, f"block{index + 1}")
                continue
            if lang == "sh":
                command = ["bash", "-e", "-c", f"{text}\nenv -0 > {dump}"]
            else:
                command = [sys.executable, "-c", text]
            done = subprocess.run(command, cwd=machine.work, env=env, capture_output=True,
                                  timeout=300, check=False)
            (tmp_path / f"block{index + 1}.log").write_bytes(  # for whoever reads a failure
                done.stdout + b"\n--- stderr\n" + done.stderr)
            assert done.returncode == 0, (
                f"README block {index + 1} ({lang}) failed:\n{text}\n--- stdout\n"
                f"{done.stdout.decode(errors='replace')[-2000:]}\n--- stderr\n"
                f"{done.stderr.decode(errors='replace')[-3000:]}")
            if lang == "sh":
                env = _environment(dump.read_bytes())
