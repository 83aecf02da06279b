"""Dual control from the config file (a floor the API cannot go below), and across workers."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from e2e.dual_control_support import cast, needs_approval
from e2e.e2e_helpers import assert_error, create_key, ok, unique
from kq_support import ServerProcess, configured_server, free_port

pytestmark = pytest.mark.server


def config_file(tmp_path: Path, dual_control: object) -> Path:
    path = tmp_path / "kq.json"
    path.write_text(json.dumps({"dual_control": dual_control}))
    return path


def test_the_config_file_turns_it_on_and_is_a_floor(tmp_path: Path) -> None:
    server = configured_server(tmp_path, {"dual_control": {
        "approvals": 1, "operations": ["revoke"], "ttl": "1h"}})
    server.start()
    try:
        server.init()
        server.unseal()
        people = cast(server, approvals=None)
        admin = people.http(people.admin)
        described = ok(admin.get("/v1/sys/dual-control"))
        assert described["config_file"] == {"approvals": 1, "operations": ["revoke"],
                                            "ttl": 3600.0}
        assert (described["approvals"], described["operations"], described["stored"]) == (
            1, ["revoke"], None)

        name = unique("dcc/key")
        create_key(admin, name, "aes-256-gcm")
        ok(admin.post(f"/v1/keys/{name}/schedule-deletion", json={}))  # not in the set
        other = unique("dcc/key")
        create_key(admin, other, "aes-256-gcm")
        approval_id = needs_approval(admin.post(f"/v1/keys/{other}/revoke",
                                                json={"reason": "retired"}), required=1)
        people.approve(approval_id, count=1)
        ok(admin.post(f"/v1/keys/{other}/revoke",
                      json={"reason": "retired", "approval_id": approval_id}))

        # The API may not ask for fewer approvals than the file, even with approvals.
        error = assert_error(admin.put("/v1/sys/dual-control", json={"approvals": 0}), 400,
                             "invalid_request")
        assert "config file requires at least 1" in error["message"]
        # Settings and file combine: the union of actions, the shorter ttl.
        combined = ok(admin.put("/v1/sys/dual-control",
                                json={"approvals": 1, "operations": ["policy-put"],
                                      "ttl": "2h"}))
        assert (combined["approvals"], combined["operations"], combined["ttl"]) == (
            1, ["policy-put", "revoke"], 3600.0)
        assert combined["stored"]["operations"] == ["policy-put"]
        # Stricter is fine, at once.
        stricter = ok(admin.put("/v1/sys/dual-control", json={"approvals": 2}))
        assert stricter["approvals"] == 2 and stricter["ttl"] == 3600.0
        assert "token-create-privileged" in stricter["operations"]
        # Back down to the file's floor is weakening: it needs the approvals now in force.
        back = {"approvals": 1, "operations": ["revoke"], "ttl": "1h"}
        back_id = needs_approval(admin.put("/v1/sys/dual-control", json=back), required=2)
        people.approve(back_id, count=2)
        assert ok(admin.put("/v1/sys/dual-control",
                            json={**back, "approval_id": back_id}))["approvals"] == 1

        # The file's one-hour ttl applies.
        late = unique("dcc/late")
        create_key(admin, late, "aes-256-gcm")
        late_id = needs_approval(admin.post(f"/v1/keys/{late}/revoke",
                                            json={"reason": "retired"}), required=1)
        people.approve(late_id, count=1)
        server.advance_clock(3601)
        assert_error(admin.post(f"/v1/keys/{late}/revoke",
                                json={"reason": "retired", "approval_id": late_id}),
                     409, "approval_expired")
        people.close()
    finally:
        server.stop()


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
