"""A keyquorum server on PostgreSQL: started with ``--database``, and what it does when
the database goes away.

A server process runs with ``--database`` and ``--database-password-file`` as an
operator would start it; an in-process node on PostgreSQL sees the database stop
under it: requests fail fast with 503 ``storage_unavailable`` until it is back, when
the node carries on by itself with nothing half-written.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import MakeInProcess
from keyquorum.config import Settings
from kq_support import ServerProcess, free_port
from pg_support import PostgresCluster


def test_settings_do_not_show_the_database_url_in_their_repr(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url="postgresql://kq:hunter2@db/keys")
    assert "hunter2" not in repr(settings)


def test_a_server_process_runs_on_postgresql_with_database_and_a_password_file(
        tmp_path: Path, postgres: PostgresCluster) -> None:
    name = postgres.create_database()
    server = ServerProcess(data_dir=tmp_path / "data", port=free_port(), extra_args=[
        "--database", postgres.url(name), "--database-password-file",
        str(postgres.password_file)])
    try:
        server.start()
        server.init()
        server.unseal()
        health = httpx.get(f"{server.addr}/v1/sys/health", timeout=10).json()
        assert health["storage"] == "postgresql"
        token = {"Authorization": f"Bearer {server.root_token}"}
        made = httpx.post(f"{server.addr}/v1/keys", headers=token, timeout=10,
                          json={"name": "on-pg", "spec": "aes-256-gcm"})
        assert made.status_code == 200, made.text
        assert not (tmp_path / "data" / "keyquorum.db").exists()
        with postgres.admin(name) as conn:
            assert conn.execute("SELECT name FROM keys").fetchall() == [("on-pg",)]
    finally:
        server.stop()
        postgres.drop_database(name)


# -- outages ------------------------------------------------------------------------------


@pytest.fixture
def on_postgresql(postgres: PostgresCluster) -> Iterator[dict[str, str]]:
    """Settings of a store on a database of its own at the newest schema (dropped after:
    asked for before ``make_inprocess``, so its servers are stopped first)."""
    name = postgres.create_database()
    try:
        yield postgres.settings_for(name)
    finally:
        postgres.drop_database(name)


def test_while_postgresql_is_down_requests_fail_fast_and_the_node_recovers_by_itself(
        on_postgresql: dict[str, str], make_inprocess: MakeInProcess,
        postgres: PostgresCluster) -> None:
    server = make_inprocess(config=on_postgresql)
    server.init()
    server.unseal()
    http = server.client(server.root_token)
    made = http.post("/v1/keys", json={"name": "before", "spec": "aes-256-gcm"})
    assert made.status_code == 200, made.text
    sealed = http.post("/v1/keys/before/encrypt", json={"plaintext": "aGk="}).json()
    postgres.stop()
    try:
        for method, path, body in [
                ("POST", "/v1/keys/before/encrypt", {"plaintext": "aGk="}),
                ("POST", "/v1/keys", {"name": "during", "spec": "aes-256-gcm"}),
                ("POST", "/v1/keys/before/rotate", {}),
                ("GET", "/v1/keys/before", None)]:
            started = time.monotonic()
            answer = http.request(method, path, json=body)
            assert time.monotonic() - started < 2.0, path
            assert answer.status_code == 503, (path, answer.text)
            assert answer.json()["error"]["code"] == "storage_unavailable", path
    finally:
        postgres.start()
    # Back: the same node, no restart, no unseal; what failed left nothing behind.
    opened = http.post("/v1/keys/before/decrypt", json={"ciphertext": sealed["ciphertext"]})
    assert opened.status_code == 200, opened.text
    assert opened.json()["plaintext"] == "aGk="
    assert http.get("/v1/keys/during").status_code == 404
    assert http.get("/v1/keys/before").json()["primary_version"] == 1
    verified = http.post("/v1/audit/verify", json={})
    assert verified.status_code == 200, verified.text
    assert verified.json()["ok"] is True


def test_a_token_not_cached_while_postgresql_is_down_is_answered_503_never_500(
        on_postgresql: dict[str, str], make_inprocess: MakeInProcess,
        postgres: PostgresCluster) -> None:
    """The token must be looked up in storage, which is away: on the crypto front, on a
    native route, on a large body's early check and on a malformed body's refusal the
    answer is 503 ``storage_unavailable`` or the request's own refusal, never a 500 (CI
    under load: a refusal's token lookup raised the driver's error out of the app)."""
    server = make_inprocess(config=on_postgresql)
    server.init()
    server.unseal()
    root = server.client(server.root_token)
    assert root.post("/v1/keys", json={"name": "before", "spec": "aes-256-gcm"}
                     ).status_code == 200
    made = root.post("/v1/auth/tokens", json={"policies": ["root"]})
    assert made.status_code == 200, made.text
    fresh = server.client(made.json()["token"])  # never used: this node has not cached it
    large = {"plaintext": "aGk=", "context": {"pad": "x" * 70_000}}
    postgres.stop()
    try:
        for method, path, body in [
                ("POST", "/v1/keys/before/encrypt", {"plaintext": "aGk="}),
                ("GET", "/v1/keys/before", None),
                ("POST", "/v1/keys/before/encrypt", large)]:
            answer = fresh.request(method, path, json=body)
            assert answer.status_code == 503, (path, answer.text)
            assert answer.json()["error"]["code"] == "storage_unavailable", path
        broken = fresh.post("/v1/keys/before/encrypt", content=b"{not json",
                            headers={"content-type": "application/json"})
        assert broken.status_code == 400, broken.text
        assert broken.json()["error"]["code"] == "invalid_request"
    finally:
        postgres.start()
    assert fresh.post("/v1/keys/before/encrypt", json={"plaintext": "aGk="}
                      ).status_code == 200
