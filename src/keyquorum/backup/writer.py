"""Making a backup on a running, unsealed server (``GET /v1/sys/backup``).

The canaries are made first, with the live keys; then one read transaction
takes the snapshot, so every key version a canary names is in it. The file is
produced as it is read (header, then sealed segments): a large store is never
held in memory, and the read transaction lasts as long as the download.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from keyquorum import __version__
from keyquorum.backup.canaries import make_canaries
from keyquorum.backup.format import (
    DEFAULT_SEGMENT_SIZE,
    FORMAT_NAME,
    BackupHeader,
    check_segment_size,
    seal_backup,
)
from keyquorum.backup.snapshot import body_lines
from keyquorum.crypto.random import random_bytes
from keyquorum.crypto.stream import NONCE_PREFIX_SIZE, SALT_SIZE
from keyquorum.errors import Conflict
from keyquorum.seal.fingerprint import root_key_id, root_key_matches
from keyquorum.seal.seal_set import SHAMIR_ENTRY
from keyquorum.seal.shamir import ShamirSealConfig
from keyquorum.service.seals import seal_entries
from keyquorum.storage.snapshot import consistent_read, schema_revision, table_counts

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from keyquorum.service.core import Core


@dataclass(frozen=True)
class BackupStream:
    """A backup being made: its id, how many canaries, and the file's bytes (lazily)."""

    backup_id: str
    canaries: int
    chunks: Iterator[bytes] = field(repr=False)


def start_backup(core: Core, *, segment_size: int = DEFAULT_SEGMENT_SIZE) -> BackupStream:
    """Make the canaries now; the snapshot is read when ``chunks`` is first iterated.

    Raises ``Sealed`` while sealed (the root key is needed for the backup key).
    """
    check_segment_size(segment_size)
    root_key = core.root_key()
    with core.engine.connect() as conn:  # refused before anything is answered (see _file)
        _check_current(root_key, ShamirSealConfig.from_json(seal_entries(conn)[SHAMIR_ENTRY]))
    backup_id = str(uuid.uuid4())
    canaries = make_canaries(core, backup_id)
    created = datetime.fromtimestamp(core.clock.now(), UTC).isoformat().replace("+00:00", "Z")
    public = {"format": FORMAT_NAME, "backup_id": backup_id, "created_at": created,
              "server_version": __version__, "node": core.node}
    return BackupStream(backup_id, len(canaries),
                        _file(core.engine, root_key, segment_size, public, canaries))


def _file(engine: Engine, root_key: bytes, segment_size: int, public: dict[str, Any],
          canaries: list[dict[str, Any]]) -> Iterator[bytes]:
    with consistent_read(engine) as conn:
        counts = table_counts(conn)
        entries = seal_entries(conn)
        # The header's Shamir entry always names the root key's id, so restore can check
        # the key a seal opens, and the fingerprint it shows is the one operators pin
        # (stores made before the id was stored get it here, from the key in memory).
        shamir = ShamirSealConfig.from_json(entries[SHAMIR_ENTRY])
        _check_current(root_key, shamir)  # again in the snapshot: a rekey may just have landed
        if not shamir.root_id:
            shamir = replace(shamir, root_id=root_key_id(root_key))
            entries[SHAMIR_ENTRY] = shamir.to_json()
        seals = {name: base64.b64encode(value).decode("ascii")
                 for name, value in entries.items()}
        header = BackupHeader(
            segment_size,
            {**public, "schema_revision": schema_revision(conn), "seals": seals,
             "seal_fingerprint": shamir.fingerprint,
             "tables": counts, "canaries": len(canaries)},
            salt=random_bytes(SALT_SIZE), nonce_prefix=random_bytes(NONCE_PREFIX_SIZE))
        yield from seal_backup(header, root_key, body_lines(conn, counts, canaries))


def _check_current(root_key: bytes, shamir: ShamirSealConfig) -> None:
    """A rekey rotates the root key; a process that has not adopted the new one yet
    (another node) would write a header whose seals open a key other than the body's.
    Refuse instead (``conflict``): a backup must open with the shares in its header."""
    if shamir.root_id and not root_key_matches(root_key, shamir.root_id):
        raise Conflict("the root key in this process is not the stored one (a rekey "
                       "rotated it); retry, or seal and unseal this node")
