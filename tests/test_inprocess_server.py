"""The in-process stand-in for a server process behaves as the tests written for one expect."""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from conftest import MakeInProcess
from inprocess_server import InProcessServer


def test_a_fresh_one_is_uninitialized_and_init_and_unseal_over_http_open_it(
        fresh_inprocess: InProcessServer) -> None:
    with fresh_inprocess.anonymous() as http:
        assert http.get("/v1/sys/health").status_code == 503
        assert http.get("/v1/sys/seal-status").json()["initialized"] is False
    made = fresh_inprocess.init(shares=3, threshold=2)
    assert fresh_inprocess.root_token == made["root_token"]
    assert fresh_inprocess.shares == made["shares"] and len(made["shares"]) == 3
    assert fresh_inprocess.unseal()["sealed"] is False
    with fresh_inprocess.client() as http:
        assert http.get("/v1/auth/tokens/self").status_code == 200


def test_every_client_reaches_the_one_app_and_closing_one_leaves_the_others(
        inprocess_server: InProcessServer) -> None:
    root = inprocess_server.client()
    assert root.put("/v1/policies/p", json={"rules": [
        {"keys": "**", "operations": ["encrypt"]}]}).status_code == 200
    token = root.post("/v1/auth/tokens", json={"policies": ["p"]}).json()["token"]
    with inprocess_server.client(token) as http:
        assert http.get("/v1/auth/tokens/self").json()["policies"] == ["p"]
    assert root.get("/v1/auth/tokens/self").json()["policies"] == ["root"]
    with inprocess_server.anonymous({"Authorization": "Bearer nonsense"}) as http:
        assert http.get("/v1/keys").status_code == 401


def test_clients_may_be_used_from_several_threads_at_once(
        inprocess_server: InProcessServer) -> None:
    with inprocess_server.client() as http:
        assert http.post("/v1/keys", json={"name": "t/k", "spec": "aes-256-gcm"}).is_success
        body = {"plaintext": base64.b64encode(b"x").decode()}
        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(lambda _: http.post("/v1/keys/t/k/encrypt",
                                                      json=body).status_code, range(32)))
    assert codes == [200] * 32


def test_advance_clock_moves_the_test_clock_and_runs_the_scheduler(
        inprocess_server: InProcessServer) -> None:
    assert inprocess_server.core is not None
    before = inprocess_server.core.clock.now()
    with inprocess_server.client() as http:
        assert http.post("/v1/keys", json={"name": "t/gone", "spec": "aes-256-gcm"}).is_success
        assert http.post("/v1/keys/t/gone/schedule-deletion", json={"days": 7}).is_success
    ran = inprocess_server.advance_clock(8 * 86400)
    assert ran["destroyed"] == ["t/gone"]
    assert inprocess_server.core.clock.now() >= before + 8 * 86400


def test_requests_come_from_loopback_as_a_local_connection_would(
        inprocess_server: InProcessServer) -> None:
    with inprocess_server.client() as http:
        answer = http.post("/v1/random", json={"bytes": 4})
        records = http.get("/v1/audit", params={"operation": "random"}).json()["records"]
    mine = [r for r in records if r["request_id"] == answer.headers["x-request-id"]]
    assert mine[0]["client"] == "127.0.0.1"


def test_config_is_read_as_a_config_file_and_stop_seals_and_closes(
        make_inprocess: MakeInProcess, tmp_path: Path) -> None:
    server = make_inprocess(config={"audit_sinks": [
        {"name": "copy", "type": "file", "path": str(tmp_path / "copy.jsonl")}]})
    server.init()
    server.unseal()
    core = server.core
    assert core is not None and [s.name for s in core.settings.audit_sinks] == ["copy"]
    with server.client() as http:
        assert http.post("/v1/keys", json={"name": "c/k", "spec": "aes-256-gcm"}).is_success
    server.stop()
    assert core.sealed and server.core is None
    assert '"operation":"create"' in (tmp_path / "copy.jsonl").read_text()
    server.stop()  # twice is harmless
