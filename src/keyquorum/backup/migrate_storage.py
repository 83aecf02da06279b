"""Moving a sealed SQLite store into an empty PostgreSQL database, verified
(``keyquorum operator migrate-storage --from DIR --to postgresql://...``).

Order is what keeps a failed move from leaving anything half-done:

1. the source data dir is locked as a server locks it, so no server runs on it
   meanwhile (refused if one does);
2. the source is brought to the newest schema, exactly as starting the server on it
   would (nothing else in it is changed);
3. the target must be empty: not one table in its default schema;
4. then, in ONE transaction on the target: the schema is created; every row of every
   table is copied as stored (ciphertext stays ciphertext: the store needs no
   unsealing to move); the id sequences are moved past the copied ids; every table
   is compared with the source row by row and value by value; a
   ``sys:migrate-storage`` record is appended to the audit chain; and every node's
   chain is verified on the target (every link, the heads, nothing beyond a head,
   and each stored checkpoint's link; their signatures and the braids too when the
   audit public key is given). Only then does it
   commit.

A failure at any step leaves the target empty (PostgreSQL's DDL is transactional)
and the source as it was. The source is never removed: keep it until a server on
PostgreSQL has been unsealed and checked.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from keyquorum.audit.chain import GENESIS, AuditChain, ChainHead, read_heads
from keyquorum.audit.checkpoints import stored_checkpoints
from keyquorum.audit.records import AuditRecord, to_row
from keyquorum.audit.verify import VerifyReport, verify_chain
from keyquorum.service.context import next_request_id
from keyquorum.storage import transfer
from keyquorum.storage.audit_repo import (
    LEGACY_NODE,
    newest_seqs,
    node_registry,
    records_between,
)
from keyquorum.storage.engine import migrate, migrate_on, open_engine, sqlite_url
from keyquorum.storage.errors import storage_failure
from keyquorum.storage.postgres import is_postgresql
from keyquorum.storage.snapshot import consistent_read

SERVER_LOCK = "keyquorum.lock"
"""The file a server holds locked while it runs on a data dir (``runtime.server``)."""
STORE_FILE = "keyquorum.db"
_AUDIT_PAGE = 2000


class MigrationError(Exception):
    """The move was refused or failed; nothing was written to the target."""


class Progress(Protocol):
    """Told what is being done and how far it got (``keyquorum.cli`` draws it)."""

    def phase(self, name: str, total: int) -> None: ...

    def advance(self, rows: int) -> None: ...


class _Silent:
    def phase(self, name: str, total: int) -> None:
        pass

    def advance(self, rows: int) -> None:
        pass


@dataclass(frozen=True)
class MigrationResult:
    source: Path
    target: str  # the URL with any password masked
    tables: dict[str, int]
    audit: VerifyReport
    seconds: float
    checkpoint_signatures: bool  # whether checkpoint signatures were checked too
    rows: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows", sum(self.tables.values()))

    def to_json(self) -> dict[str, Any]:
        return {"source": str(self.source), "target": self.target, "rows": self.rows,
                "tables": self.tables, "audit": self.audit.to_json(),
                "checkpoint_signatures": self.checkpoint_signatures,
                "seconds": round(self.seconds, 3)}


def migrate_storage(source: Path, target_url: str, *, password_file: Path | None = None,
                    audit_public_key: str | None = None, now: float | None = None,
                    progress: Progress | None = None,
                    record: Mapping[str, str] | None = None) -> MigrationResult:
    """Copy the SQLite store in ``source`` into the empty database at ``target_url``;
    ``record`` adds facts to the move's audit record (a restore says it was one)."""
    if not is_postgresql(target_url):
        raise MigrationError("the target must be a postgresql:// URL")
    if not (source / STORE_FILE).is_file():
        raise MigrationError(f"{source} holds no keyquorum store ({STORE_FILE})")
    shown = make_url(target_url).render_as_string(hide_password=True)
    report = progress or _Silent()
    started = time.monotonic()
    with _locked(source):
        source_engine = open_engine(sqlite_url(source))
        try:
            target_engine = open_engine(target_url, password_file=password_file)
        except ValueError as exc:
            source_engine.dispose()
            raise MigrationError(str(exc)) from None
        try:
            migrate(source_engine)
            counts, audit = _move(source_engine, target_engine, report, audit_public_key,
                                  time.time() if now is None else now, dict(record or {}))
        except transfer.TransferError as exc:
            raise MigrationError(str(exc)) from None
        except DBAPIError as exc:
            reason = storage_failure(exc)
            if reason is None:
                raise
            driver = str(exc.orig).splitlines()[0] if exc.orig is not None else reason
            raise MigrationError(f"the target database cannot be used ({driver})") from None
        finally:
            source_engine.dispose()
            target_engine.dispose()
    return MigrationResult(source=source, target=shown, tables=counts, audit=audit,
                           seconds=time.monotonic() - started,
                           checkpoint_signatures=audit_public_key is not None)


@contextlib.contextmanager
def _locked(source: Path) -> Iterator[IO[str]]:
    """Hold the data dir's server lock for the whole move."""
    with open(source / SERVER_LOCK, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MigrationError(f"a keyquorum server is running on {source}: stop it "
                                 "first (the store must be at rest to move)") from None
        try:
            yield lock
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _move(source_engine: Engine, target_engine: Engine, report: Progress,
          audit_public_key: str | None, now: float,
          facts: dict[str, str]) -> tuple[dict[str, int], VerifyReport]:
    tables = transfer.tables()
    with consistent_read(source_engine) as source:  # one snapshot for every read
        counts = transfer.row_counts(source)
        total = sum(counts.values())
        with target_engine.begin() as target:
            present = transfer.existing_tables(target)
            if present:
                raise MigrationError(f"the target database is not empty (it has "
                                     f"{len(present)} tables: {', '.join(present[:5])}"
                                     f"{', ...' if len(present) > 5 else ''}); give an "
                                     "empty database")
            migrate_on(target)
            report.phase("copy", total)
            for table in tables:
                transfer.copy_table(source, target, table, report.advance)
            transfer.reset_sequences(target)
            report.phase("compare", total)
            for table in tables:
                mismatch = transfer.compare_table(source, target, table, report.advance)
                if mismatch is not None:
                    raise MigrationError(f"the copy is not exact: table {mismatch.table}: "
                                         f"{mismatch.reason}")
            if transfer.row_counts(target) != counts:
                raise MigrationError("the copy's row counts differ from the original's")
            _record_move(target_engine, target, counts, now, facts)
            report.phase("audit chain", counts.get("audit_records", 0) + 1)
            audit = _verify_audit(target, audit_public_key, report)
            if not audit.ok:
                fault = audit.first_bad
                raise MigrationError(
                    "the audit chain does not verify on the copy (nor on the original, "
                    f"which was copied exactly): {fault.reason if fault else 'unknown'}")
    return counts, audit


def _record_move(target_engine: Engine, target: Connection, counts: dict[str, int],
                 now: float, facts: dict[str, str]) -> None:
    """Append ``sys:migrate-storage`` to the moved chain (signed by the next checkpoint
    the service makes once unsealed: the store is sealed, so no key is at hand)."""
    record = AuditRecord(
        time=now, request_id=next_request_id(), identity=None,
        operation="sys:migrate-storage", key=None, key_version=None, outcome="ok",
        error_code=None, client="local",
        detail={"from": "sqlite", "to": "postgresql", "rows": str(sum(counts.values())),
                **facts})
    AuditChain(target_engine).append(target, [to_row(record)])


def _verify_audit(conn: Connection, public_pem: str | None,
                  report: Progress) -> VerifyReport:
    """Every node's chain on ``conn`` (a store restored from a cluster's backup holds one
    per node): links and heads, no record beyond a head; each stored checkpoint must
    name a link of its node's chain, and with ``public_pem`` every signature and braid
    must be good too. Walking node 1's chain only let a record changed in another
    node's chain be copied and reported verified."""
    heads = read_heads(conn) or {LEGACY_NODE: ChainHead(0, GENESIS)}
    checkpoints = stored_checkpoints(conn)
    links: dict[tuple[int, int], str] = {}
    wanted = {(checkpoint.node, checkpoint.seq) for checkpoint in checkpoints}

    def records() -> Iterator[dict[str, Any]]:
        for node in sorted(heads):
            after, upto = 0, heads[node].seq
            while True:
                rows = records_between(conn, after, upto, _AUDIT_PAGE, node)
                if not rows:
                    break
                for row in rows:
                    if (node, row["seq"]) in wanted:
                        links[(node, row["seq"])] = row["chain_hash"]
                    yield row
                report.advance(len(rows))
                after = rows[-1]["seq"]

    if public_pem is not None:
        registry = {node: first for node, (_name, first) in node_registry(conn).items()}
        verified = verify_chain(records(), checkpoints, public_pem, heads=heads,
                                registry=registry)
    else:
        verified = verify_chain(records(), [], "", heads=heads)
        if verified.ok:
            for checkpoint in checkpoints:
                if links.get((checkpoint.node, checkpoint.seq)) != checkpoint.chain_hash:
                    raise MigrationError(f"the stored checkpoint at record {checkpoint.seq} "
                                         f"of node {checkpoint.node} does not name a link "
                                         "of its chain")
    if verified.ok:
        for node, seq in sorted(newest_seqs(conn).items()):
            head = heads.get(node)
            if head is None or seq > head.seq:
                raise MigrationError(f"records beyond the head of node {node}'s audit chain "
                                     "(added outside the service)")
    return verified
