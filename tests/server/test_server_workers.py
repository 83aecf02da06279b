"""`keyquorum server --workers 2`: two processes, one socket, one store, one truth.

Each request below opens a fresh connection, so the kernel hands it to either
worker; the tests first make sure both workers answered, then check that every
change made through one is seen by the other: unseal progress, a rotation, a
revoked token, a changed policy, sealing.
"""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from kq_support import ServerProcess, free_port

PLAINTEXT = base64.b64encode(b"both workers").decode()


def fresh(server: ServerProcess, method: str, path: str, token: str | None = None,
          **kwargs: object) -> httpx.Response:
    """One request on a new connection (so either worker may take it)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, f"{server.addr}{path}", headers=headers, timeout=30,
                         **kwargs)  # type: ignore[arg-type]


def workers_seen(server: ServerProcess, tries: int = 200) -> set[int]:
    seen: set[int] = set()
    for _ in range(tries):
        seen.add(fresh(server, "GET", "/v1/sys/health").json()["worker"])
        if len(seen) == 2:
            break
    return seen


@pytest.mark.server
def test_two_workers_share_unseal_changes_and_seal(two_workers: ServerProcess) -> None:
    server = two_workers
    assert len(workers_seen(server)) == 2, "the kernel never gave a connection to worker 2"
    init = fresh(server, "POST", "/v1/sys/init", json={"shares": 3, "threshold": 2}).json()
    root = init["root_token"]

    # Unseal progress is one count, whichever worker takes each share.
    first = fresh(server, "POST", "/v1/sys/unseal", json={"share": init["shares"][0]})
    assert first.json()["progress"] == 1 and first.json()["sealed"] is True
    second = fresh(server, "POST", "/v1/sys/unseal", json={"share": init["shares"][2]})
    assert second.json()["sealed"] is False
    assert all(fresh(server, "GET", "/v1/sys/health").status_code == 200 for _ in range(20))

    # A rotation made by one worker is what every worker encrypts with.
    assert fresh(server, "POST", "/v1/keys", root,
                 json={"name": "w/k", "spec": "aes-256-gcm"}).is_success
    old = [fresh(server, "POST", "/v1/keys/w/k/encrypt", root, json={"plaintext": PLAINTEXT})
           .json() for _ in range(10)]
    assert {item["key_version"] for item in old} == {1}
    assert fresh(server, "POST", "/v1/keys/w/k/rotate", root).json()["primary_version"] == 2
    new = [fresh(server, "POST", "/v1/keys/w/k/encrypt", root, json={"plaintext": PLAINTEXT})
           .json()["key_version"] for _ in range(20)]
    assert set(new) == {2}
    for item in old:  # and old ciphertexts decrypt everywhere
        answer = fresh(server, "POST", "/v1/decrypt", root, json={"ciphertext": item["ciphertext"]})
        assert answer.json()["plaintext"] == PLAINTEXT

    # A token revoked through one worker is refused by both, cached or not.
    assert fresh(server, "PUT", "/v1/policies/w-enc", root, json={"rules": [
        {"keys": "w/*", "operations": ["encrypt"]}]}).is_success
    child = fresh(server, "POST", "/v1/auth/tokens", root, json={"policies": ["w-enc"]}).json()
    for _ in range(10):  # warm both workers' token caches
        assert fresh(server, "POST", "/v1/keys/w/k/encrypt", child["token"],
                     json={"plaintext": PLAINTEXT}).status_code == 200
    # A policy change reaches both workers' authorizers.
    assert fresh(server, "PUT", "/v1/policies/w-enc", root, json={"rules": [
        {"keys": "w/*", "operations": ["decrypt"]}]}).is_success
    codes = {fresh(server, "POST", "/v1/keys/w/k/encrypt", child["token"],
                   json={"plaintext": PLAINTEXT}).status_code for _ in range(20)}
    assert codes == {403}
    assert fresh(server, "DELETE", f"/v1/auth/tokens/{child['accessor']}", root).is_success
    codes = {fresh(server, "GET", "/v1/auth/tokens/self", child["token"]).status_code
             for _ in range(20)}
    assert codes == {401}

    # Sealing through one worker seals both.
    assert fresh(server, "POST", "/v1/sys/seal", root).is_success
    assert {fresh(server, "GET", "/v1/sys/health").status_code for _ in range(20)} == {503}
    refused = fresh(server, "POST", "/v1/keys/w/k/encrypt", root, json={"plaintext": PLAINTEXT})
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "sealed"


@pytest.mark.server
def test_workers_refuse_the_test_clock(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "keyquorum", "server", "--data-dir", str(tmp_path / "d"),
         "--listen", f"127.0.0.1:{free_port()}", "--workers", "2", "--unsafe-test-clock"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "single worker" in result.stderr


@pytest.mark.server
def test_concurrent_inits_on_two_workers_make_exactly_one_seal(
        two_workers: ServerProcess) -> None:
    from concurrent.futures import ThreadPoolExecutor

    server = two_workers
    assert len(workers_seen(server)) == 2

    def init(_: int) -> httpx.Response:
        return fresh(server, "POST", "/v1/sys/init", json={"shares": 2, "threshold": 2,
                                                           "force": True})

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(init, range(6)))
    winners = [a for a in answers if a.status_code == 200]
    assert len(winners) == 1
    assert {a.status_code for a in answers if a is not winners[0]} == {409}
    shares = winners[0].json()["shares"]
    for share in shares:
        status = fresh(server, "POST", "/v1/sys/unseal", json={"share": share}).json()
    assert status["sealed"] is False
    token = winners[0].json()["root_token"]
    assert fresh(server, "GET", "/v1/auth/tokens/self", token).status_code == 200


@pytest.mark.server
def test_workers_stop_when_the_supervisor_is_killed(two_workers: ServerProcess) -> None:
    import os
    import signal
    import time

    server = two_workers
    pids = workers_seen(server)
    assert len(pids) == 2
    server.stop(signal.SIGKILL)  # the supervisor dies without telling anyone
    deadline = time.monotonic() + 20
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        for pid in list(alive):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                alive.discard(pid)
        time.sleep(0.2)
    assert not alive, f"workers {alive} outlived their supervisor"
