"""Rebuilding a store from a backup, offline (``keyquorum operator restore``).

Order is what keeps a bad backup from leaving anything behind:

1. the target directory must be new or empty;
2. the header is checked against what the operator pinned (``pin.check_header``:
   the seal fingerprint), before any seal is tried: a forged or edited header is
   refused having loaded, contacted and written nothing;
2b. the root key is opened from the header's seal entries with what the operator
   gives (``seal_set.open_root_key``: shares, a passphrase, automatic seals taken
   from the operator's local recovery config, never from the file), and must be
   the root key the header names (its root key id, compared in constant time);
3. the WHOLE body is authenticated, segment by segment, into an anonymous
   temporary file, and parsed: every table known, every count as the header says;
4. only then is the directory created, the schema migrated to the backup's
   revision, every row inserted and a ``sys:restore`` record appended to the
   restored audit chain (linked to its head, then pinned by a checkpoint signed
   with the restored audit key), all in one transaction; then the schema goes
   on to the newest revision.

A failure in 1-3 creates nothing; a failure in 4 removes what it created.
The restored store starts sealed and opens with the same seals as the original.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine

from keyquorum.audit.chain import AuditChain
from keyquorum.audit.checkpoints import make_checkpoint
from keyquorum.audit.keys import AUDIT_KEYS_ENTRY, AuditKeys
from keyquorum.audit.records import AuditRecord, to_row
from keyquorum.backup.format import BackupHeader, InvalidBackup, open_body, read_header
from keyquorum.backup.pin import check_header, check_root_key, seal_fingerprint_of
from keyquorum.clock import Clock, SystemClock
from keyquorum.errors import InvalidRequest
from keyquorum.seal.barrier import KEYRING_ENTRY, Barrier, BarrierError, open_keyring
from keyquorum.seal.seal_set import Unlock, open_root_key
from keyquorum.service.context import next_request_id
from keyquorum.storage.engine import MIGRATIONS_DIR, migrate, migrate_on, open_engine, sqlite_url
from keyquorum.storage.snapshot import insert_rows, layout_of
from keyquorum.storage.system_repo import get_entry

_INSERT_BATCH = 500


@dataclass(frozen=True)
class RestoreResult:
    """What was restored, and the canaries the body carried (for the drill)."""

    data_dir: Path
    backup_id: str
    created_at: str
    schema_revision: str
    tables: dict[str, int]
    audit_seq: int
    canaries: list[dict[str, Any]] = field(repr=False)
    seal_fingerprint: str | None = None
    # the restored store's audit public key (public: checks its checkpoints' signatures)
    audit_public_key: str | None = field(default=None, repr=False)


@dataclass
class _Body:
    """The authenticated body, parsed once: what the insert pass will find in it."""

    tables: dict[str, int] = field(default_factory=dict)
    canaries: list[dict[str, Any]] = field(default_factory=list)


def check_target(data_dir: Path) -> None:
    """Refuse a target that is not a new or empty directory (nothing is created here)."""
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise InvalidRequest(f"{data_dir} is not empty: restore only into a new or empty "
                             "directory, so nothing there is overwritten or mixed in")


def _known_revision(revision: object) -> str:
    if not isinstance(revision, str):
        raise InvalidBackup()
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    try:
        if script.get_revision(revision) is None:
            raise CommandError(revision)
    except CommandError:
        raise InvalidRequest(f"the backup's schema revision {revision} is unknown to this "
                             "keyquorum: restore it with the version that made it, or newer"
                             ) from None
    return revision


def _lines(body: IO[bytes]) -> Iterator[tuple[str, Any]]:
    """``("table", directive)``, ``("row", values)`` and ``("canary", dict)``, in body order."""
    body.seek(0)
    for line in body:
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise InvalidBackup() from None
        if isinstance(item, list):
            yield "row", item
        elif isinstance(item, dict) and "table" in item:
            yield "table", item
        elif isinstance(item, dict) and isinstance(item.get("canary"), dict):
            yield "canary", item["canary"]
        else:
            raise InvalidBackup()


def _check_body(body: IO[bytes], header: BackupHeader) -> _Body:
    """Every table known with the columns it had, every count as the header says."""
    parsed = _Body()
    current: str | None = None
    width = 0
    for kind, item in _lines(body):
        if kind == "table":
            name, columns = item.get("table"), item.get("columns")
            layout = layout_of(name) if isinstance(name, str) else None
            if layout is None or not isinstance(columns, list) \
                    or not set(columns) <= set(layout.columns) or name in parsed.tables:
                raise InvalidBackup(f"the backup holds a table this keyquorum does not know "
                                    f"({name!r}): restore it with the version that made it")
            current, width = name, len(columns)
            parsed.tables[name] = 0
        elif kind == "row":
            if current is None or len(item) != width:
                raise InvalidBackup()
            parsed.tables[current] += 1
        else:
            current = None
            parsed.canaries.append(item)
    if parsed.tables != header.tables or len(parsed.canaries) != header.canaries:
        raise InvalidBackup()
    return parsed


def _insert_rows(conn: Connection, body: IO[bytes]) -> None:
    """Insert every row, a batch at a time, into the table its directive names."""
    table: str | None = None
    columns: list[str] = []
    binary: set[str] = set()
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        if batch and table is not None:
            insert_rows(conn, table, batch)
        batch.clear()

    for kind, item in _lines(body):
        if kind == "row":
            values = dict(zip(columns, item, strict=True))
            for name in binary:
                if values[name] is not None:
                    values[name] = base64.b64decode(values[name])
            batch.append(values)
            if len(batch) >= _INSERT_BATCH:
                flush()
            continue
        flush()
        if kind == "table":
            table = item["table"]
            columns, binary = item["columns"], set(item.get("binary", []))
    flush()


def _audit_keys(conn: Connection, root_key: bytes) -> AuditKeys:
    """The restored store's audit keys, through its own keyring under the root key."""
    def entry(name: str) -> bytes:
        value = get_entry(conn, name)
        if value is None:
            raise InvalidBackup(f"the backup holds no {name} entry")
        return bytes(value)

    try:
        barrier = Barrier(open_keyring(root_key, entry(KEYRING_ENTRY)))
        return AuditKeys(barrier.decrypt(AUDIT_KEYS_ENTRY, entry(AUDIT_KEYS_ENTRY)))
    except BarrierError:
        raise InvalidBackup() from None


def _record_restore(engine: Engine, conn: Connection, root_key: bytes, header: BackupHeader,
                    now: float) -> tuple[int, str]:
    """Append ``sys:restore`` to the restored chain and sign a checkpoint over it; the
    record's seq and the audit public key that signed."""
    public = header.public
    record = AuditRecord(
        time=now, request_id=next_request_id(), identity=None, operation="sys:restore",
        key=None, key_version=None, outcome="ok", error_code=None, client="local",
        detail={"backup_id": str(public.get("backup_id")),
                "backup_created_at": str(public.get("created_at")),
                "source_node": str(public.get("node")),
                "source_version": str(public.get("server_version"))})
    head = AuditChain(engine).append(conn, [to_row(record)])
    keys = _audit_keys(conn, root_key)
    make_checkpoint(conn, keys, now)
    return head.seq, keys.public_pem


@contextlib.contextmanager
def _new_store(data_dir: Path) -> Iterator[Path]:
    """Create the store directory (0700); on failure remove everything created in it."""
    created = not data_dir.exists()
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    try:
        yield data_dir
    except BaseException:
        if created:
            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            for child in data_dir.iterdir():
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        raise


def open_backup(path: Path, unlock: Unlock, expect: tuple[str, ...] = ()
                ) -> tuple[BackupHeader, bytes, IO[bytes]]:
    """The header, the root key, and the authenticated body in an anonymous temporary file.

    ``expect`` holds the seal fingerprints the backup may belong to (any one). The
    caller closes the file (it is deleted then). Raises ``BackupMismatch`` for a
    backup the pin refuses, ``InvalidBackup`` for a damaged file,
    ``InvalidRequest`` for a bad share, ``Sealed`` for too few.
    """
    try:
        src = path.open("rb")
    except OSError as exc:
        raise InvalidRequest(f"cannot read {path}: {exc.strerror}") from None
    with src:
        header, raw = read_header(src)
        entries = header.seal_entries()
        seal = check_header(entries, unlock, expect)  # before any seal is tried
        try:
            root_key = open_root_key(entries, unlock)
        except (KeyError, ValueError, TypeError):  # a seal entry that does not parse
            raise InvalidBackup() from None
        check_root_key(seal, root_key)
        body = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller
        try:
            open_body(src, header, raw, root_key, body)
        except BaseException:
            body.close()
            raise
    return header, root_key, body


def restore(path: Path, data_dir: Path, unlock: Unlock, *, clock: Clock | None = None,
            expect: tuple[str, ...] = ()) -> RestoreResult:
    """Rebuild a store in ``data_dir`` from the backup at ``path`` (see the module doc)."""
    check_target(data_dir)
    header, root_key, body = open_backup(path, unlock, expect)
    with body:
        revision = _known_revision(header.public.get("schema_revision"))
        parsed = _check_body(body, header)
        check_target(data_dir)  # again: it may have changed while the body was checked
        old_umask = os.umask(0o077)  # the store, its WAL and journal: the owner's alone
        try:
            with _new_store(data_dir):
                engine = open_engine(sqlite_url(data_dir))
                try:
                    migrate(engine, revision)
                    with engine.begin() as conn:
                        _insert_rows(conn, body)
                        # The rows at the newest schema before the record is appended
                        # (still one transaction): the chain writer knows only today's
                        # tables (a backup older than chains per node has no seq column).
                        migrate_on(conn)
                        seq, public_pem = _record_restore(engine, conn, root_key, header,
                                                          (clock or SystemClock()).now())
                finally:
                    engine.dispose()
        finally:
            os.umask(old_umask)
    return RestoreResult(data_dir=data_dir, backup_id=str(header.public.get("backup_id")),
                         seal_fingerprint=seal_fingerprint_of(header),
                         created_at=str(header.public.get("created_at")),
                         schema_revision=revision, tables=parsed.tables, audit_seq=seq,
                         canaries=parsed.canaries, audit_public_key=public_pem)
