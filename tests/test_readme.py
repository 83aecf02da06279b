"""README.md runs as written: its shell and Python blocks, in order, against a dev server.

Like a newcomer on a fresh machine: an empty home directory and working directory,
``keyquorum dev`` started there (as the README's first line does), then every
block in the README's order, the shell ones in one shell session (variables a
block exports are seen by the blocks after it, the Python ones included). The
only change made to the text: the dev server listens on a free port instead of
8200 (this machine is shared), so ``127.0.0.1:8200`` is read as that port and
``KEYQUORUM_ADDR`` points there from the start.

A block the test cannot run (it installs software, or needs a production server,
an HSM or custodians) is preceded in README.md by a comment saying why:
``<!-- not run by tests/test_readme.py: ... -->``; such blocks are counted, so a
new one is a decision, not an accident.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from kq_support import free_port

README = Path(__file__).resolve().parents[1] / "README.md"
_BLOCK = re.compile(r"(?:<!-- not run by tests/test_readme\.py: (?P<why>[^>]*?) -->\n)?"
                    r"^```(?P<lang>sh|python)\n(?P<body>.*?)^```", re.S | re.M)
NOT_RUN = 5
"""The blocks README.md says are not run: install, production server, seals, backups,
custodians."""


def blocks() -> list[tuple[str, str, str | None]]:
    return [(m["lang"], m["body"], m["why"]) for m in _BLOCK.finditer(README.read_text())]


def test_every_block_is_run_or_says_why_not() -> None:
    found = blocks()
    skipped = [why for _lang, _body, why in found if why is not None]
    assert all(why.strip() for why in skipped)
    assert len(skipped) == NOT_RUN, skipped
    assert sum(1 for _l, _b, why in found if why is None) >= 8  # the ones people try first


def _environment(dump: bytes) -> dict[str, str]:
    pairs = (item.split(b"=", 1) for item in dump.split(b"\0") if b"=" in item)
    return {k.decode(): v.decode() for k, v in pairs}


@pytest.mark.server
def test_the_readme_runs_as_written(tmp_path: Path) -> None:
    port = free_port()
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KEYQUORUM_", "AWS_", "BAO_", "VAULT_"))}
    env.update(HOME=str(home), KEYQUORUM_ADDR=f"http://127.0.0.1:{port}",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    log = tmp_path / "dev.log"
    with open(log, "wb") as out:
        dev = subprocess.Popen([sys.executable, "-m", "keyquorum", "dev", "--listen",
                                f"127.0.0.1:{port}"], cwd=work, env=env, stdout=out,
                               stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert dev.poll() is None, log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/sys/health", timeout=1
                             ).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "keyquorum dev did not start"
            time.sleep(0.1)
        dump = tmp_path / "env"
        for index, (lang, body, why) in enumerate(blocks()):
            if why is not None:
                continue
            text = body.replace("127.0.0.1:8200", f"127.0.0.1:{port}")
            if lang == "sh":
                command = ["bash", "-e", "-c", f"{text}\nenv -0 > {dump}"]
            else:
                command = [sys.executable, "-c", text]
            done = subprocess.run(command, cwd=work, env=env, capture_output=True,
                                  timeout=300, check=False)
            assert done.returncode == 0, (
                f"README block {index + 1} ({lang}) failed:\n{text}\n--- stdout\n"
                f"{done.stdout.decode(errors='replace')[-2000:]}\n--- stderr\n"
                f"{done.stderr.decode(errors='replace')[-2000:]}")
            if lang == "sh":
                env = _environment(dump.read_bytes())
    finally:
        dev.terminate()
        dev.wait(timeout=30)
