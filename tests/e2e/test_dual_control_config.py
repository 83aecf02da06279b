"""Dual control across the server process's edges: a bad config file stops the server at
start, and settings and approvals hold across ``--workers``.

(The config file as a floor, in process: tests/service/test_dual_control_config.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from dual_control_support import cast, needs_approval
from http_helpers import ok, unique
from kq_support import ServerProcess, free_port

pytestmark = pytest.mark.server


def config_file(tmp_path: Path, dual_control: object) -> Path:
    path = tmp_path / "kq.json"
    path.write_text(json.dumps({"dual_control": dual_control}))
    return path


@pytest.mark.parametrize("bad", [{"approvals": 2, "operations": ["rotate"]},
                                 {"approvals": "two"}, {"approvals": 2, "quorum": 1}])
def test_a_bad_dual_control_config_stops_the_server_at_start(tmp_path: Path,
                                                             bad: object) -> None:
    config = config_file(tmp_path, bad)
    result = subprocess.run(
        [sys.executable, "-m", "keyquorum", "server", "--data-dir", str(tmp_path / "d"),
         "--listen", f"127.0.0.1:{free_port()}", "--config", str(config)],
        capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "dual_control" in result.stderr


def fresh(server: ServerProcess, token: str, method: str, path: str,
          **kwargs: object) -> httpx.Response:
    """One request on a new connection, so either worker may take it."""
    return httpx.request(method, f"{server.addr}{path}", timeout=30,
                         headers={"Authorization": f"Bearer {token}"},
                         **kwargs)  # type: ignore[arg-type]


def test_settings_and_approvals_hold_across_workers(tmp_path: Path) -> None:
    server = ServerProcess(data_dir=tmp_path / "data", port=free_port(), test_clock=False,
                           extra_args=["--workers", "2"])
    server.start()
    try:
        server.init()
        server.unseal()
        seen = {httpx.get(f"{server.addr}/v1/sys/health").json()["worker"]
                for _ in range(100)}
        assert len(seen) == 2, "the kernel never gave a connection to worker 2"
        people = cast(server, approvals=None)
        ok(fresh(server, people.admin, "PUT", "/v1/sys/dual-control", json={"approvals": 2}))
        names = [unique("dcw/key") for _ in range(12)]
        ids = []
        for name in names:
            ok(fresh(server, people.admin, "POST", "/v1/keys",
                     json={"name": name, "spec": "aes-256-gcm"}))
            # Whichever worker takes it, the new setting holds at once.
            ids.append(needs_approval(fresh(server, people.admin, "POST",
                                            f"/v1/keys/{name}/revoke",
                                            json={"reason": "retired"})))
        for approver in people.approvers[:2]:
            for approval_id in ids:
                ok(fresh(server, approver, "POST", f"/v1/approvals/{approval_id}/approve"))

        start = threading.Barrier(6)
        statuses: list[int] = []

        def resend() -> None:
            start.wait()
            answer = fresh(server, people.admin, "POST", f"/v1/keys/{names[0]}/revoke",
                           json={"reason": "retired", "approval_id": ids[0]})
            statuses.append(answer.status_code)

        threads = [threading.Thread(target=resend) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(statuses) == [200, 409, 409, 409, 409, 409]
        for name, approval_id in zip(names[1:], ids[1:], strict=True):
            ok(fresh(server, people.admin, "POST", f"/v1/keys/{name}/revoke",
                     json={"reason": "retired", "approval_id": approval_id}))
        people.close()
    finally:
        server.stop()
