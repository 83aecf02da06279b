"""``keyquorum operator migrate-storage``: a SQLite store moves onto PostgreSQL, exactly.

A real store is made on SQLite through the API (keys of several kinds, a rotation,
a policy and a token bound to it, signatures, ciphertexts, audit history with a
signed checkpoint), the server is stopped, and the store is moved with the command
an operator runs into a database of the PostgreSQL the tests started. A server on
PostgreSQL then unseals with the same shares and the old token decrypts what was
made before the move. Refusals leave the target as it was.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from inprocess_server import InProcessServer
from keyquorum.backup.migrate_storage import MigrationError, migrate_storage
from pg_support import PostgresCluster

SPECS = {"mv/aes": "aes-256-gcm", "mv/ed": "ed25519", "mv/mac": "hmac-sha256"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def ok(answer: Any) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


@dataclass
class Source:
    """A stopped SQLite store and what was made in it."""

    data_dir: Path
    shares: list[str]
    root_token: str
    user_token: str
    audit_public_key: str
    # (ciphertext, its encryption context, the plaintext)
    ciphertexts: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    signature: str = ""
    audit_records: int = 0


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory, migrated_store: Path) -> Iterator[Source]:
    data_dir = tmp_path_factory.mktemp("sqlite-store") / "data"
    server = InProcessServer(data_dir, migrated=migrated_store, run_scheduler=False)
    server.start()
    try:
        server.init()
        server.unseal()
        http = server.client()
        for name, spec in SPECS.items():
            ok(http.post("/v1/keys", json={"name": name, "spec": spec}))
        ok(http.put("/v1/policies/mv-users", json={"rules": [
            {"keys": "mv/**", "operations": ["encrypt", "decrypt", "sign", "verify", "read"]}]}))
        user = ok(http.post("/v1/auth/tokens", json={"policies": ["mv-users"],
                                                     "name": "mv-user"}))["token"]
        made = Source(data_dir, server.shares, server.root_token, user,
                      ok(http.get("/v1/audit/public-key"))["public_key_pem"])
        for round_ in range(2):  # versions 1 and 2 of mv/aes, each with its ciphertext
            plaintext = f"made before the move, version {round_ + 1}".encode()
            context = {"tenant": f"t{round_}"}
            sealed = ok(http.post("/v1/keys/mv/aes/encrypt", json={
                "plaintext": b64(plaintext), "context": context}))
            made.ciphertexts.append((sealed["ciphertext"], context, plaintext))
            if round_ == 0:
                ok(http.post("/v1/keys/mv/aes/rotate", json={}))
        made.signature = ok(http.post("/v1/keys/mv/ed/sign", json={
            "message": b64(b"signed before the move")}))["signature"]
        ok(http.post("/v1/audit/checkpoint", json={}))
    finally:
        server.stop()  # seals: the store is at rest, as the move wants it
    with sqlite3.connect(data_dir / "keyquorum.db") as db:
        made.audit_records = db.execute("SELECT count(*) FROM audit_records").fetchone()[0]
    yield made


@pytest.fixture
def store(source: Source, tmp_path: Path) -> Path:
    """This test's own copy of the stopped source store (a test may spoil it)."""
    copy = tmp_path / "source"
    shutil.copytree(source.data_dir, copy)
    return copy


def kq(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "keyquorum", *args], capture_output=True,
                          text=True, env=dict(os.environ), timeout=300)


def tables_in(postgres: PostgresCluster, database: str) -> list[str]:
    with postgres.admin(database) as conn:
        return [row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]


def test_a_moved_store_unseals_on_postgresql_and_decrypts_what_was_made_before(
        source: Source, store: Path, postgres: PostgresCluster, empty_database: str,
        tmp_path: Path) -> None:
    key_file = tmp_path / "audit.pem"
    key_file.write_text(source.audit_public_key)
    moved = kq("--json", "operator", "migrate-storage", "--from", str(store),
               "--to", postgres.url(empty_database),
               "--database-password-file", str(postgres.password_file),
               "--audit-public-key", str(key_file))
    assert moved.returncode == 0, moved.stderr
    summary = json.loads(moved.stdout)
    assert summary["audit"]["ok"] is True
    assert summary["checkpoint_signatures"] is True
    # Every record of the original, and the move's own.
    assert summary["audit"]["records"] == source.audit_records + 1
    assert summary["tables"]["keys"] == len(SPECS)
    assert summary["tables"]["key_versions"] == len(SPECS) + 1
    assert summary["tables"]["audit_checkpoints"] >= 1
    assert postgres.password not in moved.stdout + moved.stderr

    server = InProcessServer(tmp_path / "node", config=postgres.settings_for(empty_database),
                             run_scheduler=False)
    server.start()
    try:
        assert server.core is not None and server.core.engine.dialect.name == "postgresql"
        server.unseal(source.shares[1:])  # any two of the same shares
        user = server.client(source.user_token)
        for ciphertext, context, plaintext in source.ciphertexts:
            opened = ok(user.post("/v1/keys/mv/aes/decrypt", json={
                "ciphertext": ciphertext, "context": context}))
            assert base64.b64decode(opened["plaintext"]) == plaintext
        checked = ok(user.post("/v1/keys/mv/ed/verify", json={
            "message": b64(b"signed before the move"), "signature": source.signature}))
        assert checked["valid"] is True
        assert user.post("/v1/keys", json={"name": "mv/new", "spec": "aes-256-gcm"}
                         ).status_code == 403  # the policy moved with its rules
        admin = server.client(source.root_token)
        ok(admin.post("/v1/keys/mv/aes/rotate", json={}))
        ok(admin.post("/v1/audit/checkpoint", json={}))  # the checkpoint ids go on
        verified = ok(admin.post("/v1/audit/verify", json={}))
        assert verified["ok"] is True and verified["records"] > source.audit_records + 1
        moves = ok(admin.get("/v1/audit", params={
            "operation": "sys:migrate-storage"}))["records"]
        assert [r["detail"]["to"] for r in moves] == ["postgresql"]
    finally:
        server.stop()


def test_the_move_reports_its_phases_and_every_row(source: Source, store: Path,
                                                   postgres: PostgresCluster,
                                                   empty_database: str) -> None:
    seen: dict[str, list[int]] = {}

    class Recorder:
        def phase(self, name: str, total: int) -> None:
            seen[name] = [total, 0]

        def advance(self, rows: int) -> None:
            seen[list(seen)[-1]][1] += rows

    result = migrate_storage(store, postgres.url(empty_database),
                             password_file=postgres.password_file, progress=Recorder())
    assert list(seen) == ["copy", "compare", "audit chain"]
    assert seen["copy"] == [result.rows, result.rows]
    assert seen["compare"] == [result.rows, result.rows]
    assert seen["audit chain"][1] == result.audit.records == source.audit_records + 1
    assert result.checkpoint_signatures is False


def test_a_target_that_is_not_empty_is_refused_and_left_as_it_was(
        store: Path, postgres: PostgresCluster, empty_database: str) -> None:
    with postgres.admin(empty_database) as conn:
        conn.execute("CREATE TABLE someone_elses (id integer)")
        conn.execute("INSERT INTO someone_elses VALUES (7)")
    with pytest.raises(MigrationError, match=r"not empty .*someone_elses"):
        migrate_storage(store, postgres.url(empty_database),
                        password_file=postgres.password_file)
    assert tables_in(postgres, empty_database) == ["someone_elses"]
    with postgres.admin(empty_database) as conn:
        assert conn.execute("SELECT id FROM someone_elses").fetchall() == [(7,)]


def test_a_store_already_moved_is_not_moved_twice(store: Path, postgres: PostgresCluster,
                                                  empty_database: str) -> None:
    migrate_storage(store, postgres.url(empty_database), password_file=postgres.password_file)
    with pytest.raises(MigrationError, match="not empty"):
        migrate_storage(store, postgres.url(empty_database),
                        password_file=postgres.password_file)


def test_a_store_with_a_server_running_on_it_is_refused(
        store: Path, postgres: PostgresCluster, empty_database: str) -> None:
    with open(store / "keyquorum.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running server holds it
        with pytest.raises(MigrationError, match="server is running"):
            migrate_storage(store, postgres.url(empty_database),
                            password_file=postgres.password_file)
    assert tables_in(postgres, empty_database) == []


def test_a_tampered_audit_chain_fails_the_move_and_leaves_the_target_empty(
        store: Path, postgres: PostgresCluster, empty_database: str) -> None:
    with sqlite3.connect(store / "keyquorum.db") as db:
        db.execute("UPDATE audit_records SET identity = 'someone-else' WHERE id = 3")
    with pytest.raises(MigrationError, match=r"audit chain does not verify.*record 3"):
        migrate_storage(store, postgres.url(empty_database),
                        password_file=postgres.password_file)
    assert tables_in(postgres, empty_database) == []


def test_a_row_postgresql_cannot_hold_fails_the_move_naming_its_table(
        store: Path, postgres: PostgresCluster, empty_database: str) -> None:
    # SQLite does not enforce VARCHAR lengths; PostgreSQL does.
    with sqlite3.connect(store / "keyquorum.db") as db:
        db.execute("INSERT INTO policies VALUES (?, '[]', 1.0, 1.0)", ("p" * 200,))
    with pytest.raises(MigrationError, match="table policies: the target refused a row"):
        migrate_storage(store, postgres.url(empty_database),
                        password_file=postgres.password_file)
    assert tables_in(postgres, empty_database) == []


def test_a_directory_without_a_store_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="holds no keyquorum store"):
        migrate_storage(tmp_path, "postgresql://kq@db/keys")
    with pytest.raises(MigrationError, match="must be a postgresql"):
        migrate_storage(tmp_path, "sqlite:///elsewhere.db")


def add_second_chain(store: Path, records: int) -> None:
    """A store that holds a second node's chain (a PostgreSQL cluster's backup restored
    into a directory has one per node): ``records`` records appended under node-b."""
    from keyquorum.audit.chain import AuditChain, ensure_node
    from keyquorum.audit.records import AuditRecord, to_row
    from keyquorum.storage.engine import open_engine, sqlite_url

    engine = open_engine(sqlite_url(store))
    try:
        node = ensure_node(engine, "node-b")
        with engine.begin() as conn:
            AuditChain(engine, node).append(conn, [to_row(AuditRecord(
                time=1_700_000_000.0 + n, request_id=f"b-{n}", identity="acc1",
                operation="encrypt", key="mv/aes", key_version=1, outcome="ok",
                error_code=None, client="127.0.0.1")) for n in range(records)])
    finally:
        engine.dispose()


def test_every_nodes_chain_is_verified_before_the_move_is_reported(
        store: Path, postgres: PostgresCluster, empty_database: str) -> None:
    """The move walked node 1's chain only: a record changed in another node's chain was
    copied and the chain reported verified."""
    add_second_chain(store, 3)
    with sqlite3.connect(store / "keyquorum.db") as db:
        db.execute("UPDATE audit_records SET identity = 'someone-else' "
                   "WHERE node = 2 AND seq = 2")
    with pytest.raises(MigrationError, match="audit chain does not verify"):
        migrate_storage(store, postgres.url(empty_database),
                        password_file=postgres.password_file)
    assert tables_in(postgres, empty_database) == []


def test_a_store_with_two_nodes_chains_moves_with_both_verified(
        store: Path, postgres: PostgresCluster, empty_database: str) -> None:
    add_second_chain(store, 3)
    moved = migrate_storage(store, postgres.url(empty_database),
                            password_file=postgres.password_file)
    assert moved.audit.ok and [c.node for c in moved.audit.chains] == [1, 2]
    assert moved.audit.chains[1].records == 3
