"""The seal set with ``--workers 2``: a passphrase or an HSM opens every worker."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from kq_support import ServerProcess
from sealset_support import SOFTHSM_MODULE, SoftHsm, add_seal, seal_trust_config, softhsm

__all__ = ["softhsm"]

pytestmark = pytest.mark.server
PHRASE = "two workers, one passphrase"


def health_by_worker(server: ServerProcess, tries: int = 200) -> dict[int, int]:
    """HTTP status of /health per worker pid, over fresh connections (either worker)."""
    seen: dict[int, int] = {}
    for _ in range(tries):
        answer = httpx.get(f"{server.addr}/v1/sys/health", timeout=10)
        seen[answer.json()["worker"]] = answer.status_code
        if len(seen) == 2:
            break
    return seen


def until_unsealed(server: ServerProcess, timeout: float = 30.0) -> dict[int, int]:
    deadline = time.monotonic() + timeout
    while True:
        seen = health_by_worker(server)
        if len(seen) == 2 and set(seen.values()) == {200}:
            return seen
        assert time.monotonic() < deadline, seen
        time.sleep(0.2)


def test_passphrase_and_hsm_open_both_workers(two_workers: ServerProcess, softhsm: SoftHsm,
                                              monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    server = two_workers
    monkeypatch.setenv("KEYQUORUM_HSM_PIN_WORKERS", "1234")
    config = tmp_path / "kq.json"  # the server may load SoftHSM2: its config file says so
    config.write_text(json.dumps(seal_trust_config()))
    server.extra_args = [*server.extra_args, "--config", str(config)]
    server.restart()  # started before the SoftHSM configuration and the PIN were in the env
    server.init()
    server.unseal()
    with server.client() as http:
        add_seal(http, {"type": "passphrase", "passphrase": PHRASE}, server.shares[:2])
        assert http.post("/v1/sys/seal").is_success
    assert set(health_by_worker(server).values()) == {503}
    answer = httpx.post(f"{server.addr}/v1/sys/unseal", json={"passphrase": PHRASE}, timeout=30)
    assert answer.status_code == 200, answer.text
    until_unsealed(server)

    # An HSM seal: after a restart one worker opens it, and both serve.
    label = softhsm.token()
    with server.client() as http:
        added = add_seal(http, {
            "type": "pkcs11", "module": SOFTHSM_MODULE, "token_label": label,
            "key_label": "root", "pin_env": "KEYQUORUM_HSM_PIN_WORKERS"}, server.shares[1:])
        assert added["type"] == "pkcs11", added
    server.restart()
    until_unsealed(server)
    for _ in range(10):  # every worker knows how the attempt went
        seals = httpx.get(f"{server.addr}/v1/sys/seal-status", timeout=10).json()["seals"]
        assert {s["id"]: s.get("last_attempt") for s in seals}["pkcs11"]["ok"] is True
