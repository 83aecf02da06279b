"""Restoring a backup into an empty PostgreSQL database
(``keyquorum operator restore IN --database postgresql://...``).

Two steps that each already stand on their own, so nothing is checked twice by
different code:

1. the backup is restored exactly as into a directory (``backup.restore``: the
   header checked against the pin before any seal is tried, the root key checked,
   the whole body authenticated, every row inserted and a ``sys:restore`` record
   appended and signed by a checkpoint, in one transaction) into a private staging
   directory (0700, under ``TMPDIR``: it needs room for the store);
2. that store is moved into the empty database as ``operator migrate-storage`` moves
   one (``backup.migrate_storage``: one target transaction creates the schema, copies
   every row, moves the id sequences, compares every table row by row and value by
   value, appends ``sys:migrate-storage`` with ``via: restore``, and verifies the whole
   audit chain, here *with* every checkpoint's signature, since the restored audit
   key is at hand).

The staging directory is removed whatever happens, and a failure at either step
leaves the database empty. What the staging store holds is what the backup body
held: ciphertext under the barrier, never a plaintext key.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from keyquorum.backup.migrate_storage import MigrationError, MigrationResult, Progress
from keyquorum.backup.migrate_storage import migrate_storage as move_store
from keyquorum.backup.restore import RestoreResult, restore
from keyquorum.clock import Clock
from keyquorum.errors import InvalidRequest
from keyquorum.seal.seal_set import Unlock
from keyquorum.storage.postgres import is_postgresql


@dataclass(frozen=True)
class DatabaseRestore:
    """The restore (into staging) and the verified move into the database."""

    restored: RestoreResult
    moved: MigrationResult


def restore_into_database(path: Path, target_url: str, unlock: Unlock, *,
                          password_file: Path | None = None, clock: Clock | None = None,
                          expect: tuple[str, ...] = (),
                          progress: Progress | None = None) -> DatabaseRestore:
    """Rebuild the store of the backup at ``path`` in the empty database at ``target_url``.

    Raises what ``restore`` raises for the backup (``InvalidBackup``, ``BackupMismatch``,
    ``InvalidRequest``, ``Sealed``) and ``InvalidRequest`` for a target that is not an
    empty PostgreSQL database, or a copy that does not verify."""
    if not is_postgresql(target_url):
        raise InvalidRequest("--database must be a postgresql:// URL")
    staging = Path(tempfile.mkdtemp(prefix="keyquorum-restore-"))  # 0700
    try:
        restored = restore(path, staging / "store", unlock, clock=clock, expect=expect)
        try:
            moved = move_store(restored.data_dir, target_url, password_file=password_file,
                               audit_public_key=restored.audit_public_key,
                               now=clock.now() if clock is not None else None,
                               progress=progress,
                               record={"via": "restore", "backup_id": restored.backup_id})
        except MigrationError as exc:
            raise InvalidRequest(f"nothing was restored into the database: {exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return DatabaseRestore(restored=restored, moved=moved)
