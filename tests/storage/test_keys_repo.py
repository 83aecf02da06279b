"""Key and version rows read back exactly as written through the prepared hot-path statements."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from keyquorum.keys.models import Key, KeyVersion
from keyquorum.keys.states import KeyState, VersionState
from keyquorum.storage import keys_repo
from keyquorum.storage.prepared import Prepared, Statements

pytestmark = pytest.mark.postgresql


@pytest.fixture
def engine(store_engine: Engine) -> Engine:
    """A store at the newest schema: SQLite, then PostgreSQL."""
    return store_engine


def _key(**changes: object) -> Key:
    key = Key(id="6f1c1f7e-0000-4000-8000-000000000001", name="app/db", spec="aes-256-gcm",
              purpose="encrypt", state=KeyState.ENABLED, primary_version=1,
              min_decrypt_version=1, origin="generated", exportable=False,
              deletion_window_days=30, created_at=1_700_000_000.25,
              updated_at=1_700_000_000.25, revision=1)
    return key.evolve(**changes)


def _version(number: int, **changes: object) -> KeyVersion:
    version = KeyVersion(key_id=_key().id, version=number, state=VersionState.ACTIVE,
                         created_at=1_700_000_000.5, activated_at=1_700_000_000.5)
    return KeyVersion(**{**version.__dict__, **changes})


def test_a_key_with_every_field_set_reads_back_equal_by_name_and_by_id(engine: Engine) -> None:
    key = _key(owner="team-a", description="ünïcode description", labels={"env": "prod"},
               exportable=True, rotation_period=86_400, next_rotation=1_700_086_400.0,
               crypto_period=2**40, usage_limit=2**53 - 1, created_by="acc-1",
               last_used_at=1_700_000_001.0)
    versions = (_version(1, state=VersionState.DEACTIVATED, deactivated_at=1.5,
                         protect_reserved=4096, state_reason="superseded"),
                _version(2, public_key="-----BEGIN PUBLIC KEY-----\n..."))
    with engine.begin() as conn:
        keys_repo.insert_key(conn, key)
        for version in versions:
            keys_repo.insert_version(conn, version, b"\x01sealed-material")
    with engine.connect() as conn:
        by_name = keys_repo.get_key(conn, name="app/db")
        by_id = keys_repo.get_key(conn, key_id=key.id)
        assert keys_repo.get_material(conn, key.id, 2) == b"\x01sealed-material"
    assert by_name == by_id == key.evolve(versions=versions)
    assert by_name is not None and by_name.exportable is True


def test_a_duplicate_name_is_sqlalchemys_integrity_error_without_its_values(
        engine: Engine) -> None:
    """Callers turn it into 409 conflict: the driver's own exception would be a 500."""
    with engine.begin() as conn:
        keys_repo.insert_key(conn, _key())
        with pytest.raises(IntegrityError) as raised:
            keys_repo.insert_key(conn, _key(id="6f1c1f7e-0000-4000-8000-000000000002"))
    assert "6f1c1f7e-0000-4000-8000-000000000002" not in str(raised.value)


def test_a_missing_key_is_none(engine: Engine) -> None:
    with engine.connect() as conn:
        assert keys_repo.get_key(conn, name="nope") is None
        assert keys_repo.get_key(conn, key_id="nope") is None


def test_update_key_writes_only_at_the_expected_revision(engine: Engine) -> None:
    key = _key()
    with engine.begin() as conn:
        keys_repo.insert_key(conn, key)
        assert keys_repo.update_key(conn, key, key.evolve(primary_version=2, owner="b"))
        assert not keys_repo.update_key(conn, key, key.evolve(owner="stale"))
        stored = keys_repo.get_key(conn, key_id=key.id)
    assert stored is not None
    assert (stored.revision, stored.primary_version, stored.owner) == (2, 2, "b")


def test_update_version_sets_the_named_columns_and_refuses_unknown_ones(engine: Engine) -> None:
    with engine.begin() as conn:
        keys_repo.insert_key(conn, _key())
        keys_repo.insert_version(conn, _version(1), b"m")
        keys_repo.update_version(conn, _key().id, 1, state=VersionState.DESTROYED,
                                 material=None, destroyed_at=9.0)
        with pytest.raises(ValueError, match="no column stat"):
            keys_repo.update_version(conn, _key().id, 1, stat="typo")
        stored = keys_repo.get_key(conn, key_id=_key().id)
        assert keys_repo.get_material(conn, _key().id, 1) is None
    assert stored is not None
    assert (stored.versions[0].state, stored.versions[0].destroyed_at) == (
        VersionState.DESTROYED, 9.0)


def test_reserve_protects_moves_the_ceiling_by_blocks(engine: Engine) -> None:
    with engine.begin() as conn:
        keys_repo.insert_key(conn, _key())
        keys_repo.insert_version(conn, _version(1), b"m")
        assert keys_repo.reserve_protects(conn, _key().id, 1, 100) == 100
        assert keys_repo.reserve_protects(conn, _key().id, 1, 100) == 200


def _hot_statements() -> list[tuple[str, Statements]]:
    return [(name, value) for name, value in vars(keys_repo).items()
            if isinstance(value, Statements)]


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()],
                         ids=["sqlite", "postgresql"])
def test_every_prepared_statement_compiles_with_its_parameters_for_both_dialects(
        dialect: object) -> None:
    assert len(_hot_statements()) >= 6
    for name, statements in _hot_statements():
        prepared = Prepared(dialect, statements.statement,  # type: ignore[arg-type]
                            statements.column_keys)
        if prepared.positions is None:  # PostgreSQL: named, every one a known parameter
            named = set(re.findall(r"%\((\w+)\)s", prepared.sql))
            assert named, name
        else:  # SQLite: one ? per position
            assert prepared.sql.count("?") == len(prepared.positions), name
