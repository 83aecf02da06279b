"""Migration 0008 adds ``tokens.orphan``: every token made before it stays a child of its
minter, so a revocation reaches exactly what it reached before the upgrade."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import insert

from keyquorum.storage import tokens_repo
from keyquorum.storage.engine import migrate, open_engine
from keyquorum.storage.schema import tokens


def _token(accessor: str, created_by: str) -> dict[str, object]:
    return {"accessor": accessor, "token_hash": accessor.encode().ljust(32, b"h"),
            "name": accessor, "policies": '["operator"]', "created_at": 1.0,
            "created_by": created_by, "expires_at": None, "revoked_at": None}


def test_tokens_from_before_orphans_stay_children_of_their_minter(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'kq.db'}")
    migrate(engine, "0007_audit_nodes")
    parent, child = "acc_00000000000000aa", "acc_00000000000000bb"
    with engine.begin() as conn:
        conn.execute(insert(tokens), [  # the 0007 columns only
            _token(parent, "init"),
            _token(child, parent)])
    migrate(engine)
    with engine.connect() as conn:
        rows = [tokens_repo.find_by_accessor(conn, a) for a in (parent, child)]
        assert [row.orphan for row in rows if row is not None] == [False, False]
        assert [c.accessor for c in tokens_repo.unrevoked_children(conn, [parent])] == [child]
