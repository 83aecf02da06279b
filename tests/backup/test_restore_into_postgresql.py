"""``keyquorum operator restore IN --database postgresql://...``: a backup is rebuilt in an
empty PostgreSQL database, every row compared and the audit chain verified, or nothing is.

The backup is made through the API of a real store (a key rotated once, a ciphertext
of each version, a signed checkpoint), then restored with the command an operator
runs into a database of the PostgreSQL the tests started; a node on that database
unseals with the same shares and decrypts what was made before the backup.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from inprocess_server import InProcessServer
from pg_support import PostgresCluster


def ok(answer: Any) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


@dataclass
class Backup:
    path: Path
    share_file: Path
    shares: list[str]
    root_token: str
    ciphertexts: list[tuple[str, bytes]] = field(default_factory=list)


@pytest.fixture(scope="module")
def backup(tmp_path_factory: pytest.TempPathFactory, migrated_store: Path) -> Iterator[Backup]:
    base = tmp_path_factory.mktemp("restore-pg")
    server = InProcessServer(base / "data", migrated=migrated_store, run_scheduler=False)
    server.start()
    try:
        server.init()
        server.unseal()
        http = server.client()
        ok(http.post("/v1/keys", json={"name": "rs/aes", "spec": "aes-256-gcm"}))
        made = Backup(base / "store.kqb", base / "shares.txt", server.shares,
                      server.root_token)
        for version in (1, 2):
            plaintext = f"made before the backup, version {version}".encode()
            sealed = ok(http.post("/v1/keys/rs/aes/encrypt", json={
                "plaintext": base64.b64encode(plaintext).decode()}))
            made.ciphertexts.append((sealed["ciphertext"], plaintext))
            if version == 1:
                ok(http.post("/v1/keys/rs/aes/rotate", json={}))
        ok(http.post("/v1/audit/checkpoint", json={}))
        answer = http.get("/v1/sys/backup")
        assert answer.status_code == 200, answer.text
        made.path.write_bytes(answer.content)
    finally:
        server.stop()
    made.share_file.write_text("\n".join(made.shares[:2]) + "\n")
    os.chmod(made.share_file, 0o600)
    yield made


def kq(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "keyquorum", *args], capture_output=True,
                          text=True, env=dict(os.environ), timeout=300)


def restore_into(backup: Backup, postgres: PostgresCluster, database: str,
                 *shares: str) -> subprocess.CompletedProcess[str]:
    given = [arg for share in shares for arg in ("--share", share)] or [
        "--share-file", str(backup.share_file)]
    return kq("--json", "operator", "restore", str(backup.path),
              "--database", postgres.url(database),
              "--database-password-file", str(postgres.password_file), *given)


def tables_in(postgres: PostgresCluster, database: str) -> list[str]:
    with postgres.admin(database) as conn:
        return [row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]


def test_a_backup_restored_into_postgresql_unseals_and_decrypts_what_was_made_before(
        backup: Backup, postgres: PostgresCluster, empty_database: str,
        tmp_path: Path) -> None:
    done = restore_into(backup, postgres, empty_database)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    # Every row of the backup, plus the restore's record and its checkpoint, compared.
    assert summary["rows_compared"] == summary["rows"] + 2
    assert summary["checkpoint_signatures"] is True
    assert summary["audit_records_verified"] == summary["tables"]["audit_records"] + 2
    assert "password" not in done.stdout and postgres.password not in done.stdout
    node = InProcessServer(tmp_path / "node", config=postgres.settings_for(empty_database),
                           run_scheduler=False)
    node.start()
    try:
        node.root_token = backup.root_token
        node.unseal(backup.shares[1:])  # the same seal, any two shares
        http = node.client()
        for ciphertext, plaintext in backup.ciphertexts:
            opened = ok(http.post("/v1/keys/rs/aes/decrypt", json={"ciphertext": ciphertext}))
            assert base64.b64decode(opened["plaintext"]) == plaintext
        moved = ok(http.get("/v1/audit", params={"operation": "sys:migrate-storage"}))
        assert [r["detail"]["via"] for r in moved["records"]] == ["restore"]
        assert len(ok(http.get("/v1/audit", params={"operation": "sys:restore"}))
                   ["records"]) == 1
        assert ok(http.post("/v1/audit/verify", json={}))["ok"] is True
    finally:
        node.stop()


def test_a_restore_into_a_database_that_is_not_empty_changes_nothing(
        backup: Backup, postgres: PostgresCluster) -> None:
    database = postgres.create_database()  # at the newest schema: tables, no rows
    try:
        before = tables_in(postgres, database)
        done = restore_into(backup, postgres, database)
        assert done.returncode != 0
        assert "not empty" in done.stderr
        assert tables_in(postgres, database) == before
    finally:
        postgres.drop_database(database)


def test_a_restore_with_a_wrong_share_creates_nothing_in_the_database(
        backup: Backup, postgres: PostgresCluster, empty_database: str) -> None:
    wrong = backup.shares[0][:-4] + ("AAAA" if not backup.shares[0].endswith("AAAA")
                                     else "BBBB")
    done = restore_into(backup, postgres, empty_database, wrong, backup.shares[1])
    assert done.returncode != 0
    assert tables_in(postgres, empty_database) == []
