"""A backup made before audit chains per node (schema 0006) restores with today's code.

The restore inserts the rows at the backup's schema, brings them to the newest one and
only then appends ``sys:restore`` and signs a braid, all in one transaction; the
restored trail is node 1's chain as it was (its old single-chain checkpoints still
checked) plus the restore's record, and it verifies.
"""

from __future__ import annotations

import json
from pathlib import Path

from keyquorum.audit.chain import read_heads
from keyquorum.audit.checkpoints import stored_checkpoints
from keyquorum.audit.verify import verify_chain
from keyquorum.backup.restore import restore
from keyquorum.seal.seal_set import Unlock
from keyquorum.storage.audit_repo import records_between
from keyquorum.storage.engine import open_engine

VECTOR = Path(__file__).resolve().parent.parent / "vectors" / "backup-0006"


def test_a_backup_made_before_chains_per_node_restores_and_its_trail_verifies(
        tmp_path: Path) -> None:
    shares = json.loads((VECTOR / "shares.json").read_text())
    result = restore(VECTOR / "store.kqbk", tmp_path / "data", Unlock(shares=tuple(shares[:2])))
    assert result.schema_revision == "0006_custodian_keys"
    assert result.audit_public_key is not None
    engine = open_engine(f"sqlite:///{tmp_path / 'data' / 'keyquorum.db'}")
    try:
        with engine.connect() as conn:
            heads = read_heads(conn)
            checkpoints = stored_checkpoints(conn)
            records = records_between(conn, 0, heads[1].seq, 10_000)
    finally:
        engine.dispose()
    assert list(heads) == [1] and heads[1].seq == result.audit_seq
    assert any(c.braid is None for c in checkpoints)  # the old checkpoints, kept
    assert checkpoints[-1].braid == 1 and checkpoints[-1].seq == result.audit_seq
    assert records[-1]["operation"] == "sys:restore"
    report = verify_chain(records, checkpoints, result.audit_public_key, heads=heads)
    assert report.ok, report.first_bad
    assert report.last_checkpoint == result.audit_seq
