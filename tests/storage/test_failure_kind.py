"""An unexpected database error is logged by kind (type, driver type, code), never by text."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from keyquorum.storage.errors import failure_kind


def test_a_database_error_is_named_by_its_driver_type_and_code_without_its_text() -> None:
    engine = create_engine("sqlite://")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (secret TEXT UNIQUE)"))
        conn.execute(text("INSERT INTO t VALUES ('kq_a_token_hash_value')"))
        with pytest.raises(DBAPIError) as raised:
            conn.execute(text("INSERT INTO t VALUES ('kq_a_token_hash_value')"))

    kind = failure_kind(raised.value)

    assert kind == "IntegrityError (IntegrityError, SQLITE_CONSTRAINT_UNIQUE)"
    assert "kq_a_token" not in kind


def test_any_other_error_is_named_by_its_type() -> None:
    assert failure_kind(ValueError("kq_secret")) == "ValueError"
