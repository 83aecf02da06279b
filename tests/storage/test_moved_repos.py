"""The repository functions that took over SQL from services, reports and backup."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Engine

from keyquorum.keys.models import Key, KeyVersion
from keyquorum.keys.states import KeyState, VersionState
from keyquorum.storage import (
    approvals_repo,
    keys_repo,
    reports_repo,
    snapshot,
    system_repo,
    tokens_repo,
)
from keyquorum.storage.engine import migrate, open_engine

pytestmark = pytest.mark.postgresql


@pytest.fixture
def engine(store_engine: Engine) -> Engine:
    """A store at the newest schema: SQLite, then PostgreSQL."""
    return store_engine


def _key(n: int, state: KeyState = KeyState.ENABLED) -> Key:
    return Key(id=f"6f1c1f7e-0000-4000-8000-{n:012d}", name=f"app/k{n}", spec="aes-256-gcm",
               purpose="encrypt", state=state, primary_version=1, min_decrypt_version=1,
               origin="generated", exportable=False, deletion_window_days=30,
               created_at=1.0, updated_at=1.0, revision=1)


def _store(engine: Engine, key: Key, version_state: VersionState = VersionState.ACTIVE,
           material: bytes | None = b"sealed") -> None:
    with engine.begin() as conn:
        keys_repo.insert_key(conn, key)
        keys_repo.insert_version(conn, KeyVersion(key_id=key.id, version=1, state=version_state,
                                                  created_at=1.0, activated_at=2.0), material)


def test_iter_keys_walks_every_page_in_name_order(engine: Engine) -> None:
    for n in range(5):
        _store(engine, _key(n, KeyState.DISABLED if n == 3 else KeyState.ENABLED))
    with engine.connect() as conn:
        assert [k.name for k in keys_repo.iter_keys(conn, page=2)] == [
            f"app/k{n}" for n in range(5)]
        assert [k.name for k in keys_repo.iter_keys(conn, page=2, after="app/k1")] == [
            "app/k2", "app/k3", "app/k4"]
        assert keys_repo.key_names(conn, state=KeyState.ENABLED) == [
            "app/k0", "app/k1", "app/k2", "app/k4"]


def test_last_use_is_recorded_per_version_and_the_latest_on_the_key(engine: Engine) -> None:
    key = _key(1)
    _store(engine, key)
    with engine.begin() as conn:
        keys_repo.record_last_used(conn, key.id, {1: 50.0})
    with engine.connect() as conn:
        stored = keys_repo.get_key(conn, key_id=key.id)
    assert stored is not None and stored.last_used_at == 50.0
    assert stored.revision == key.revision  # metadata: no revision moves
    assert stored.versions[0].last_used_at == 50.0


def test_report_counts_and_destroyed_versions_that_kept_material(engine: Engine) -> None:
    _store(engine, _key(1))
    _store(engine, _key(2, KeyState.DESTROYED), VersionState.DESTROYED, b"left behind")
    _store(engine, _key(3, KeyState.DESTROYED), VersionState.DESTROYED, None)
    with engine.connect() as conn:
        assert reports_repo.keys_by_state(conn) == {"enabled": 1, "destroyed": 2}
        assert reports_repo.versions_by_state(conn) == {"active": 1, "destroyed": 2}
        assert reports_repo.destroyed_with_material(conn) == {"app/k2": [1]}
        [age] = reports_repo.enabled_primary_ages(conn)
    assert (age.spec, age.crypto_period, age.next_rotation, age.activated_at) == (
        "aes-256-gcm", None, None, 2.0)


def test_a_token_is_revoked_once_and_keeps_its_first_revocation(engine: Engine) -> None:
    row = tokens_repo.TokenRow(accessor="acc_0123456789abcdef", token_hash=b"h" * 32, name="t",
                               policies=("root",), created_at=1.0, created_by=None,
                               expires_at=None, revoked_at=None)
    with engine.begin() as conn:
        tokens_repo.insert_token(conn, row)
        assert tokens_repo.revoke_token(conn, row.accessor, 5.0)
        assert not tokens_repo.revoke_token(conn, row.accessor, 9.0)
        assert not tokens_repo.revoke_token(conn, "acc_ffffffffffffffff", 9.0)
    with engine.connect() as conn:
        assert tokens_repo.find_by_hash(conn, b"h" * 32) == tokens_repo.find_by_accessor(
            conn, row.accessor) == replace(row, revoked_at=5.0)
    assert "token_hash" not in repr(row)


def _approval(n: int, state: str, expires_at: float) -> approvals_repo.ApprovalRow:
    return approvals_repo.ApprovalRow(
        id=f"apr_{n:032x}", operation="export", key="app/k", requester="acc_a",
        request_hash="0" * 64, summary="{}", required=1, state=state, decisions="[]",
        created_at=float(n), expires_at=expires_at, decided_at=None, consumed_at=None)


def test_approvals_list_by_stored_state_and_expiry_newest_first(engine: Engine) -> None:
    with engine.begin() as conn:
        for row in (_approval(1, "pending", 10.0), _approval(2, "pending", 100.0),
                    _approval(3, "approved", 100.0), _approval(4, "rejected", 10.0)):
            approvals_repo.insert_approval(conn, row)

    def ids(states: tuple[str, ...] | None, expired: bool | None,
            after: tuple[float, str] | None = None) -> list[int]:
        with engine.connect() as conn:
            found = approvals_repo.list_approvals(conn, states=states, expired=expired,
                                                  now=50.0, after=after, limit=10)
        return [int(row.id[4:], 16) for row in found]

    open_states = ("pending", "approved")
    assert ids(None, None) == [4, 3, 2, 1]
    assert ids(open_states, expired=False) == [3, 2]
    assert ids(open_states, expired=True) == [1]
    assert ids(("rejected",), None) == [4]
    assert ids(None, None, after=(3.0, _approval(3, "", 0).id)) == [2, 1]


def test_an_approval_is_consumed_once_and_restored_only_from_that_consumption(
        engine: Engine) -> None:
    row = _approval(1, "approved", 100.0)
    with engine.begin() as conn:
        approvals_repo.insert_approval(conn, row)
        assert not approvals_repo.set_decisions(conn, row.id, read_state="pending",
                                                read_decisions="[]", decisions="[1]",
                                                state="approved", decided_at=2.0)
        assert approvals_repo.consume(conn, row.id, 50.0)
        assert not approvals_repo.consume(conn, row.id, 51.0)
        assert not approvals_repo.unconsume(conn, row.id, 49.0)
        assert approvals_repo.unconsume(conn, row.id, 50.0)
        assert not approvals_repo.consume(conn, row.id, 100.0)  # expired by then
        stored = approvals_repo.get_approval(conn, row.id)
    assert stored == row


def test_system_entry_swap_lock_and_delete(engine: Engine) -> None:
    with engine.begin() as conn:
        system_repo.insert_entry(conn, "seal/shamir", b"old", 1.0)
        assert not system_repo.swap_entry(conn, "seal/shamir", b"other", b"new", 2.0)
        assert system_repo.swap_entry(conn, "seal/shamir", b"old", b"new", 2.0)
        system_repo.lock_entry(conn, "seal/shamir")
        assert system_repo.update_entry(conn, "seal/shamir", b"newer", 3.0)
        assert not system_repo.update_entry(conn, "absent", b"x", 3.0)
        assert system_repo.get_entry(conn, "seal/shamir") == b"newer"
        assert system_repo.delete_entry(conn, "seal/shamir")
        assert not system_repo.delete_entry(conn, "seal/shamir")


def test_snapshot_rows_go_back_in_by_layout(engine: Engine, tmp_path: Path) -> None:
    _store(engine, _key(1))
    with snapshot.consistent_read(engine) as conn:
        counts = snapshot.table_counts(conn)
        rows = {layout.name: [dict(zip(layout.columns, row, strict=True))
                              for row in snapshot.table_rows(conn, layout.name)]
                for layout in snapshot.layouts()}
        assert snapshot.schema_revision(conn)
    assert counts["keys"] == counts["key_versions"] == 1
    versions = snapshot.layout_of("key_versions")
    assert versions is not None and versions.binary == ("material",)
    assert snapshot.layout_of("no_such_table") is None
    other = open_engine(f"sqlite:///{tmp_path / 'copy.db'}")
    migrate(other)
    with other.begin() as conn:
        for name, table_rows in rows.items():
            if name != "alembic_version":
                snapshot.insert_rows(conn, name, table_rows)
    with other.connect() as conn:
        assert keys_repo.get_key(conn, name="app/k1") is not None
        assert keys_repo.get_material(conn, _key(1).id, 1) == b"sealed"
