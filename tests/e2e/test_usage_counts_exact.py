"""Usage counts an auditor can rely on: exact across clean seals and restarts.

Protect counts are reserved in storage in blocks of 4096 so the hot path does not
write per request. A clean seal or shutdown gives the unused part back, so the
inventory shows the exact count afterwards; only a crash (SIGKILL here) leaves a
block reserved, and then the inventory says the count is an upper bound.
"""

from __future__ import annotations

import base64
import signal

import pytest

from http_helpers import create_key, ok
from kq_support import ServerProcess

pytestmark = pytest.mark.server
KEY = "usage/counted"


def _encrypt(server: ServerProcess, times: int) -> None:
    with server.client() as http:
        for _ in range(times):
            ok(http.post(f"/v1/keys/{KEY}/encrypt",
                         json={"plaintext": base64.b64encode(b"x").decode()}))


def _counted(server: ServerProcess) -> tuple[int, bool, str]:
    with server.client() as http:
        report = ok(http.get("/v1/reports/inventory"))
        shown = ok(http.get(f"/v1/keys/{KEY}"))
    key = next(k for k in report["keys"] if k["name"] == KEY)
    assert shown["versions"][0]["protect_count"] == key["protect_count"]
    return key["protect_count"], key["protect_count_exact"], report["summary"]["protect_counts"]


def test_counts_stay_exact_across_seal_and_restart_and_say_upper_bound_after_a_crash(
        kq_server: ServerProcess) -> None:
    with kq_server.client() as http:
        create_key(http, KEY, "aes-256-gcm")
    _encrypt(kq_server, 3)
    assert _counted(kq_server) == (3, True, "exact")

    with kq_server.client() as http:
        ok(http.post("/v1/sys/seal"))
    kq_server.unseal()
    assert _counted(kq_server) == (3, True, "exact")  # was 4096 before: the block is back
    _encrypt(kq_server, 1)
    assert _counted(kq_server) == (4, True, "exact")

    kq_server.restart()  # SIGTERM: a clean shutdown gives the block back too
    kq_server.unseal()
    assert _counted(kq_server) == (4, True, "exact")
    _encrypt(kq_server, 1)

    kq_server.stop(signal.SIGKILL)  # a crash: the block reserved for the 5th is kept
    kq_server.start()
    kq_server.unseal()
    count, exact, summary = _counted(kq_server)
    assert count >= 5 and (exact, summary) == (False, "upper_bound")  # high, never low
