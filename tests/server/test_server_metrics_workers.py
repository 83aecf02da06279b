"""`/metrics` under `--workers 2`: whichever worker answers a scrape reports the whole server."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kq_support import ServerProcess

ENCRYPTS = 40


def fresh(server: ServerProcess, method: str, path: str, **kwargs: object) -> httpx.Response:
    """One request on a new connection, so the kernel may give it to either worker."""
    return httpx.request(method, f"{server.addr}{path}", timeout=30,
                         headers={"Authorization": f"Bearer {server.root_token}"},
                         **kwargs)  # type: ignore[arg-type]


def encrypt_count(text: str) -> float:
    return sum(s.value for family in text_string_to_metric_families(text)
               for s in family.samples
               if s.name == "keyquorum_operations_total"
               and s.labels == {"key": "mw/k", "operation": "encrypt", "outcome": "ok"})


@pytest.mark.server
def test_every_scrape_counts_the_requests_of_both_workers(two_workers: ServerProcess) -> None:
    server = two_workers
    server.init()
    server.unseal()
    assert fresh(server, "POST", "/v1/keys", json={"name": "mw/k", "spec": "aes-256-gcm"}
                 ).status_code == 200
    plaintext = base64.b64encode(b"x").decode()
    for _ in range(ENCRYPTS):
        answer = fresh(server, "POST", "/v1/keys/mw/k/encrypt", json={"plaintext": plaintext})
        assert answer.status_code == 200, answer.text
    snapshots = server.data_dir / "metrics"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # each worker publishes within a second of counting
        published = [json.loads(p.read_text()) for p in snapshots.glob("*.json")]
        per_worker = [sum(n for key, op, _outcome, n in body["operations"]
                          if (key, op) == ("mw/k", "encrypt")) for body in published]
        if len(per_worker) == 2 and sum(per_worker) == ENCRYPTS:
            break
        time.sleep(0.2)
    assert len(per_worker) == 2 and all(per_worker), (
        "the kernel did not spread the encrypts over both workers", per_worker)
    assert sum(per_worker) == ENCRYPTS
    for _ in range(8):  # scrapes land on either worker; every one sees all 40
        scrape = fresh(server, "GET", "/metrics")
        assert scrape.status_code == 200, scrape.text
        assert encrypt_count(scrape.text) == ENCRYPTS
