"""Migration 0005 moves the old ``vault-transit/...`` labels into ``vault_transit_keys``."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import insert, select

from keyquorum.storage import transit_repo
from keyquorum.storage.engine import migrate, open_engine
from keyquorum.storage.schema import keys


def _key(key_id: str, labels: dict[str, str]) -> dict[str, object]:
    return {"id": key_id, "name": key_id, "spec": "aes-256-gcm", "purpose": "encrypt",
            "state": "enabled", "primary_version": 2, "min_decrypt_version": 1,
            "labels": json.dumps(labels), "origin": "generated", "exportable": False,
            "deletion_window_days": 30, "created_at": 1.0, "updated_at": 1.0,
            "revision": 1}


def test_old_labels_become_settings_and_leave_the_labels(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'kq.db'}")
    migrate(engine, "0004_aws_kms")
    with engine.begin() as conn:
        conn.execute(insert(keys), [
            _key("old", {"vault-transit/deletion-allowed": "true",
                         "vault-transit/min-encryption-version": "2", "team": "a"}),
            _key("plain", {"team": "b"})])
    migrate(engine)
    with engine.connect() as conn:
        labels = dict(conn.execute(select(keys.c.id, keys.c.labels)).all())
        assert json.loads(labels["old"]) == {"team": "a"}
        assert json.loads(labels["plain"]) == {"team": "b"}
        assert transit_repo.get_settings(conn, "old") == transit_repo.TransitSettings(
            deletion_allowed=True, min_encryption_version=2)
        assert transit_repo.get_settings(conn, "plain") == transit_repo.DEFAULTS
