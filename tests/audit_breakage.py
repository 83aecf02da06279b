"""Breaking audit storage under a live store, the way a full or failing audit table would."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def audit_storage_broken(data_dir: Path) -> Iterator[None]:
    """Every insert into ``audit_records`` fails (a trigger added from outside) until exit."""
    store = sqlite3.connect(data_dir / "keyquorum.db", timeout=30)
    try:
        store.execute("CREATE TRIGGER break_audit BEFORE INSERT ON audit_records "
                      "BEGIN SELECT RAISE(ABORT, 'audit storage is broken'); END")
        store.commit()
        yield
    finally:
        store.execute("DROP TRIGGER IF EXISTS break_audit")
        store.commit()
        store.close()
