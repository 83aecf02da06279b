"""What a memory dump of a server finds, after init, while unsealed and after seal (F10).

A real server process is initialized and unsealed with Shamir shares over HTTP,
used with the root token and sealed through the API; its memory is read through
``/proc/PID/mem`` (``memory_scan``) for the root key, the Shamir secret and the
unseal key derived from it, the barrier keys, every share (its text, its base32
value, its 32-byte value) and the root token. Each test prints its counts (run with
``-s``); docs/SECURITY.md quotes them.

What may remain, and why, is spelled out where it is allowed:

- the transport's read buffer (uvloop's, outside Python) keeps the bytes of the last
  request read, so the root token the seal request carried stays there; with
  Python's default allocator, freed copies of the token from earlier requests stay
  until their memory is reused;
- a thread's C stack keeps what OpenSSL's and the interpreter's frames held until
  that depth is used again: the scan counts those hits apart and reports them.

Anywhere else, nothing of the root key, the barrier keys or a share may remain.
"""

from __future__ import annotations

import base64
import json
import os
import platform
import sys
from pathlib import Path

import pytest

from kq_support import ServerProcess, free_port
from memory_scan import Found, count_in_memory, process_secrets

pytestmark = [pytest.mark.server,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")]

THRESHOLD = 2
ROOT_TOKEN = "root token"
# The allocator settings docs/SECURITY.md recommends: freed memory is overwritten (glibc).
WIPING_ALLOCATOR = {"PYTHONMALLOC": "malloc",
                    "GLIBC_TUNABLES": "glibc.malloc.perturb=165:glibc.malloc.tcache_count=0"}


def _needles(server: ServerProcess) -> dict[str, bytes]:
    from keyquorum.seal.shares import decode_share

    needles = process_secrets(server.data_dir, server.shares, THRESHOLD)
    for number, text in enumerate(server.shares, start=1):
        needles[f"share {number} text"] = text.encode()
        needles[f"share {number} base32"] = text.split("-")[2].encode()
        needles[f"share {number} value"] = bytes(decode_share(text).value)
    needles[ROOT_TOKEN] = server.root_token.encode()
    return needles


def _found(counts: dict[str, int], *, but: tuple[str, ...] = ()) -> dict[str, int]:
    return {name: n for name, n in counts.items() if n and name not in but}


def _measure(tmp_path: Path, env: dict[str, str]) -> dict[str, Found] | None:
    """What the scan finds after init, once unsealed (and used), and after seal; None
    when this user may not read the server's memory at all (what non-dumpable is for)."""
    server = ServerProcess(data_dir=tmp_path / "data", port=free_port(), test_clock=False,
                           env=env)
    try:
        server.start()
        server.init(shares=3, threshold=THRESHOLD)
        assert server.process is not None
        pid = server.process.pid
        needles = _needles(server)
        try:
            after_init = count_in_memory(pid, needles)
        except PermissionError:
            assert os.geteuid() != 0  # root may read any process: that must have worked
            return None
        server.unseal(server.shares[:THRESHOLD])  # one connection per share, as the CLI
        with server.client() as http:  # the service in use: requests of every size
            http.post("/v1/keys", json={"name": "app", "spec": "aes-256-gcm"}
                      ).raise_for_status()
            for size in (16, 2048, 65536):
                plaintext = base64.b64encode(os.urandom(size)).decode()
                sealed = http.post("/v1/keys/app/encrypt", json={"plaintext": plaintext})
                http.post("/v1/keys/app/decrypt", json={"ciphertext": sealed.json()[
                    "ciphertext"]}).raise_for_status()
        unsealed = count_in_memory(pid, needles)
        with server.client() as http:
            http.post("/v1/sys/seal").raise_for_status()
        after_seal = count_in_memory(pid, needles)
    finally:
        server.stop()
    report = {"after init": after_init, "unsealed": unsealed, "after seal": after_seal}
    print(json.dumps({"env": env, **{k: v.report() for k, v in report.items()}}))
    return report


def _check(report: dict[str, Found]) -> None:
    after_init, unsealed, after_seal = (report[k] for k in ("after init", "unsealed",
                                                            "after seal"))
    live = unsealed.elsewhere
    # The scan sees what is live: while unsealed the root key and the barrier keys are
    # there (the barrier's also in OpenSSL's key schedules).
    assert live["root key"] >= 1
    barrier_keys = [name for name in live if name.startswith("barrier key")]
    assert barrier_keys and all(live[name] >= 1 for name in barrier_keys)
    # Init's answer (every share and the root token) is overwritten once sent, and the
    # root key, secret and barrier keys it made once stored; before, a full quorum of
    # shares stayed behind.
    assert _found(after_init.elsewhere) == {}
    # Combining the shares wiped them, the secret and the unseal key; a share's text
    # is left only in the transport's read buffer, until later requests overwrite it.
    assert _found(live, but=("root key", ROOT_TOKEN, *barrier_keys)) == {}
    # Sealing wiped the root key and the barrier keys; nothing of any share is left.
    assert _found(after_seal.elsewhere, but=(ROOT_TOKEN,)) == {}


def test_after_seal_no_root_key_barrier_key_or_share_is_left_in_memory(
        tmp_path: Path) -> None:
    report = _measure(tmp_path, {})
    if report is None:
        return  # non-dumpable: this user cannot read the server's memory at all
    _check(report)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc tunables")
def test_with_a_wiping_allocator_only_the_last_request_read_keeps_the_root_token(
        tmp_path: Path) -> None:
    report = _measure(tmp_path, WIPING_ALLOCATOR)
    if report is None:
        return
    _check(report)
    # Freed copies are overwritten by the allocator: what is left of the token is the
    # seal request itself, in the transport's read buffer.
    assert report["after seal"].elsewhere[ROOT_TOKEN] <= 1
