"""Two worker processes appending to one audit chain at once never fork or break it."""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from kq_support import ServerProcess, free_port

pytestmark = pytest.mark.server


def test_concurrent_requests_on_two_workers_leave_one_unbroken_chain(tmp_path: Path) -> None:
    server = ServerProcess(data_dir=tmp_path / "data", port=free_port(), test_clock=False,
                           extra_args=["--workers", "2"])
    server.start()
    try:
        init = httpx.post(f"{server.addr}/v1/sys/init", json={"shares": 3, "threshold": 2},
                          timeout=30).json()
        for share in init["shares"][:2]:
            httpx.post(f"{server.addr}/v1/sys/unseal", json={"share": share}, timeout=30)
        headers = {"Authorization": f"Bearer {init['root_token']}"}
        assert httpx.post(f"{server.addr}/v1/keys", headers=headers, timeout=30,
                          json={"name": "chain/k", "spec": "aes-256-gcm"}).is_success
        body = {"plaintext": base64.b64encode(b"x").decode()}

        def hammer(index: int) -> int:
            # A fresh connection each time, so both workers take requests; rotations
            # write their records inside their own transactions, encrypts via group commit.
            if index % 10 == 0:
                return httpx.post(f"{server.addr}/v1/keys/chain/k/rotate", headers=headers,
                                  timeout=30).status_code
            return httpx.post(f"{server.addr}/v1/keys/chain/k/encrypt", headers=headers,
                              json=body, timeout=30).status_code

        with ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(hammer, range(200)))
        encrypts = [code for index, code in enumerate(codes) if index % 10]
        rotations = [code for index, code in enumerate(codes) if not index % 10]
        assert set(encrypts) == {200}
        assert set(rotations) <= {200, 409} and 200 in rotations  # 409: concurrent, retry
        report = httpx.post(f"{server.addr}/v1/audit/verify", headers=headers, json={},
                            timeout=60).json()
        assert report["ok"] is True, report
        assert report["records"] >= 200 + 4  # init, 2 unseals, create, and every request
    finally:
        server.stop()
