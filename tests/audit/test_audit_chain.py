"""The audit chain finds the first bad record, whatever was done to the stored log.

Each test writes a real log to the store (SQLite, then PostgreSQL) through the
group-commit writer, signs checkpoints with real audit keys, then edits the database
directly (as an attacker with database access would) or an exported file, and checks
what verify says.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from keyquorum.audit.chain import link
from keyquorum.audit.checkpoints import Checkpoint
from keyquorum.audit.export import ExportFormatError
from keyquorum.audit.keys import AuditKeys
from keyquorum.audit.log import AuditLog
from keyquorum.audit.offline import verify_file
from keyquorum.audit.records import AuditRecord
from keyquorum.audit.trail import AuditTrail
from keyquorum.clock import SystemClock
from keyquorum.seal.barrier import Barrier, Keyring
from keyquorum.storage.engine import migrate, open_engine


def record(n: int) -> AuditRecord:
    return AuditRecord(time=1_700_000_000.0 + n / 8, request_id=f"r{n}", identity="acc1",
                       operation="encrypt", key="app/k", key_version=1, outcome="ok",
                       error_code=None, client="127.0.0.1", detail={"n": str(n)},
                       context={"a" * 32: "b" * 32} if n % 2 else None)


pytestmark = pytest.mark.postgresql


@pytest.fixture
def engine(store_engine: Engine) -> Engine:
    """A store at the newest schema: SQLite, then PostgreSQL."""
    return store_engine


@pytest.fixture
def trail(engine: Engine) -> Iterator[AuditTrail]:
    audit = AuditLog(engine)
    audit.start()
    trail = AuditTrail(engine, audit, SystemClock())
    trail.open(Barrier(Keyring.generate()))
    assert trail.unseal_checkpoint_done()  # its signature lands before our writes
    yield trail
    audit.stop()


def write(trail: AuditTrail, numbers: range) -> None:
    for n in numbers:
        trail._audit.write_sync(record(n))


def sql(engine: Engine, statement: str, **params: object) -> None:
    with engine.begin() as conn:
        conn.execute(text(statement), params)


def insert_behind_the_service(engine: Engine, row: dict[str, object]) -> None:
    """Write a record straight into the table, as an attacker with the file would."""
    columns = ", ".join(row)
    sql(engine, f"INSERT INTO audit_records ({columns}) VALUES "
        f"({', '.join(':' + name for name in row)})", **row)


def rows(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(
            "SELECT * FROM audit_records ORDER BY id")).mappings()]


def test_an_untouched_log_verifies_and_every_link_follows_the_last(
        trail: AuditTrail, engine: Engine) -> None:
    write(trail, range(1, 11))
    trail.checkpoint()
    write(trail, range(11, 14))
    report = trail.verify()
    assert report.ok and report.first_bad is None
    assert report.records == 13 and report.head.seq == 13
    assert report.last_checkpoint == 10 and report.unsigned_tail == 3
    stored = rows(engine)
    assert [r["id"] for r in stored] == list(range(1, 14))
    previous = "0" * 64
    for row in stored:
        assert row["chain_hash"] == link(previous, row)
        previous = str(row["chain_hash"])


def test_a_changed_record_is_the_first_bad(trail: AuditTrail, engine: Engine) -> None:
    write(trail, range(1, 11))
    sql(engine, "UPDATE audit_records SET outcome = 'denied' WHERE id = 6")
    report = trail.verify()
    assert not report.ok and report.first_bad is not None
    assert report.first_bad.id == 6 and "changed" in report.first_bad.reason


def test_a_deleted_record_is_named(trail: AuditTrail, engine: Engine) -> None:
    write(trail, range(1, 11))
    sql(engine, "DELETE FROM audit_records WHERE id = 4")
    report = trail.verify()
    assert report.first_bad is not None and report.first_bad.id == 4
    assert "missing" in report.first_bad.reason


def test_an_inserted_record_is_found(trail: AuditTrail, engine: Engine) -> None:
    write(trail, range(1, 11))
    # Make room at 5 by moving 5.. up one, then slip a forged record in. (The place in
    # the chain is ``seq``; the attacker moves the listing's ``id`` along with it.)
    sql(engine, "UPDATE audit_records SET id = id + 100, seq = seq + 100 WHERE seq >= 5")
    sql(engine, "UPDATE audit_records SET id = id - 99, seq = seq - 99 WHERE seq >= 105")
    forged = dict(rows(engine)[0], id=5, seq=5, request_id="forged")
    insert_behind_the_service(engine, forged)
    report = trail.verify()
    assert report.first_bad is not None and report.first_bad.id == 5


def test_two_records_swapped_are_found_at_the_first(trail: AuditTrail, engine: Engine) -> None:
    write(trail, range(1, 11))
    sql(engine, "UPDATE audit_records SET id = 1000, seq = 1000 WHERE seq = 3")
    sql(engine, "UPDATE audit_records SET id = 3, seq = 3 WHERE seq = 7")
    sql(engine, "UPDATE audit_records SET id = 7, seq = 7 WHERE seq = 1000")
    report = trail.verify()
    assert report.first_bad is not None and report.first_bad.id == 3


def test_a_record_appended_behind_the_services_back_is_found(
        trail: AuditTrail, engine: Engine) -> None:
    write(trail, range(1, 6))
    last = rows(engine)[-1]
    extra = dict(last, id=6, seq=6, request_id="sneaky")
    extra["chain_hash"] = link(str(last["chain_hash"]), extra)  # even correctly linked
    insert_behind_the_service(engine, extra)
    report = trail.verify()
    assert report.first_bad is not None and report.first_bad.id == 6
    assert "outside the service" in report.first_bad.reason


def relink_from(engine: Engine, first: int) -> None:
    """What an attacker without the signing key can do: recompute every link and the head."""
    stored = rows(engine)
    previous = "0" * 64 if first == 1 else str(stored[first - 2]["chain_hash"])
    for row in stored[first - 1:]:
        previous = link(previous, row)
        sql(engine, "UPDATE audit_records SET chain_hash = :h WHERE id = :id", h=previous,
            id=row["id"])
    sql(engine, "UPDATE audit_head SET seq = :seq, chain_hash = :h", seq=stored[-1]["id"],
        h=previous)


def test_an_edit_relinked_without_the_key_breaks_the_signed_checkpoint(
        trail: AuditTrail, engine: Engine) -> None:
    write(trail, range(1, 6))
    trail.checkpoint()
    write(trail, range(6, 11))
    trail.checkpoint()
    sql(engine, "UPDATE audit_records SET identity = 'someone-else' WHERE id = 8")
    relink_from(engine, 8)
    report = trail.verify()
    assert report.first_bad is not None
    assert report.first_bad.id == 6  # the first record the good checkpoint (5) does not pin
    assert "relinked" in report.first_bad.reason


def test_a_tail_cut_behind_a_stored_checkpoint_is_found(
        trail: AuditTrail, engine: Engine) -> None:
    write(trail, range(1, 11))
    trail.checkpoint()
    sql(engine, "DELETE FROM audit_records WHERE id > 7")
    relink_from(engine, 7)  # head moved back to 7 as well
    report = trail.verify()
    assert report.first_bad is not None and report.first_bad.id == 8
    assert "tail was cut" in report.first_bad.reason


def test_a_tail_cut_with_its_checkpoints_is_found_by_a_checkpoint_held_outside(
        trail: AuditTrail, engine: Engine) -> None:
    write(trail, range(1, 11))
    held_outside = trail.checkpoint()
    assert held_outside is not None
    sql(engine, "DELETE FROM audit_records WHERE id > 7")
    sql(engine, "DELETE FROM audit_checkpoints")
    relink_from(engine, 7)
    assert trail.verify().ok  # nothing inside the database can tell any more...
    report = trail.verify([held_outside])  # ...but the auditor's copy can
    assert report.first_bad is not None and report.first_bad.id == 8


def test_a_forged_checkpoint_is_refused(trail: AuditTrail, engine: Engine) -> None:
    write(trail, range(1, 6))
    real = trail.checkpoint()
    assert real is not None
    forged = Checkpoint(real.seq, "f" * 64, real.time, real.key_id, real.signature)
    report = trail.verify([forged])
    assert report.first_bad is not None and "bad signature" in report.first_bad.reason


def export(trail: AuditTrail, path: Path) -> list[dict[str, object]]:
    path.write_bytes(b"".join(trail.export()))
    return [json.loads(line) for line in path.read_text().splitlines()]


def save(path: Path, lines: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


@pytest.fixture
def exported(trail: AuditTrail, tmp_path: Path) -> tuple[Path, list[dict[str, object]], str]:
    write(trail, range(1, 6))
    trail.checkpoint()
    write(trail, range(6, 11))
    path = tmp_path / "audit.jsonl"
    return path, export(trail, path), trail.keys.public_pem


def test_an_export_verifies_offline_with_only_the_public_key(
        exported: tuple[Path, list[dict[str, object]], str]) -> None:
    path, lines, pem = exported
    assert [line["type"] for line in lines][:1] == ["header"]
    assert lines[-1]["type"] == "end"
    report = verify_file(path, pem)
    assert report.ok and report.records == 10 and report.last_checkpoint == 5


def record_index(lines: list[dict[str, object]], record_id: int) -> int:
    return next(i for i, line in enumerate(lines)
                if line["type"] == "record" and line["id"] == record_id)


@pytest.mark.parametrize(("tamper", "first_bad"), [
    ("change", 7), ("delete", 7), ("insert", 7), ("reorder", 6),
])
def test_tampering_with_an_export_names_the_first_bad_record(
        exported: tuple[Path, list[dict[str, object]], str], tamper: str,
        first_bad: int) -> None:
    path, lines, pem = exported
    at = record_index(lines, 7)
    if tamper == "change":
        lines[at] = {**lines[at], "client": "10.9.9.9"}
    elif tamper == "delete":
        del lines[at]
    elif tamper == "insert":
        lines.insert(at, {**lines[at - 1], "request_id": "forged"})
    else:
        lines[at - 1], lines[at] = lines[at], lines[at - 1]
    save(path, lines)
    report = verify_file(path, pem)
    assert not report.ok and report.first_bad is not None
    assert report.first_bad.id == first_bad


def test_an_export_cut_short_is_refused(
        exported: tuple[Path, list[dict[str, object]], str]) -> None:
    path, lines, pem = exported
    save(path, lines[:record_index(lines, 8)])  # the end line goes with the tail
    report = verify_file(path, pem)
    assert not report.ok and report.first_bad is not None and report.first_bad.id == 8


def test_a_tail_cut_and_relabelled_export_is_caught_by_an_outside_checkpoint(
        trail: AuditTrail, exported: tuple[Path, list[dict[str, object]], str]) -> None:
    path, lines, pem = exported
    held_outside = trail.checkpoint()  # covers record 10
    assert held_outside is not None
    at = record_index(lines, 8)
    previous = lines[at - 1]
    save(path, [*lines[:at], {"type": "end", "seq": 7, "chain_hash": previous["chain_hash"]}])
    assert verify_file(path, pem).ok  # consistent on its own...
    report = verify_file(path, pem, [held_outside])
    assert report.first_bad is not None and report.first_bad.id == 8


def test_an_export_checked_with_another_public_key_fails(
        exported: tuple[Path, list[dict[str, object]], str]) -> None:
    path, _lines, _pem = exported
    stranger = AuditKeys(AuditKeys.generate_material())
    report = verify_file(path, stranger.public_pem)
    assert report.first_bad is not None and "another key" in report.first_bad.reason


def test_a_malformed_export_line_is_an_error_naming_the_line(
        exported: tuple[Path, list[dict[str, object]], str]) -> None:
    path, lines, pem = exported
    at = record_index(lines, 3)
    lines[at] = {**lines[at], "request_id": 3}
    save(path, lines)
    with pytest.raises(ExportFormatError, match="line 4"):
        verify_file(path, pem)


def test_context_values_are_stored_only_as_hmacs(trail: AuditTrail, engine: Engine) -> None:
    keys = trail.keys
    hashed = keys.hash_context({"tenant": "acme-corp"})
    assert "acme-corp" not in json.dumps(hashed) and "tenant" not in json.dumps(hashed)
    assert hashed == {keys.hash_value("tenant"): keys.hash_value("acme-corp")}
    trail._audit.write_sync(AuditRecord(
        time=1.0, request_id="r", identity=None, operation="encrypt", key="k",
        key_version=1, outcome="ok", error_code=None, client=None, context=hashed))
    found, _ = trail._audit.query(context=keys.hash_value("acme-corp"))
    assert [r.request_id for r in found] == ["r"]
    assert trail._audit.query(context=keys.hash_value("other"))[0] == []
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT context FROM audit_records")).scalar_one()
    assert "acme" not in stored


def test_records_written_before_the_chain_existed_are_linked_on_first_start(
        tmp_path: Path) -> None:
    from alembic import command

    from keyquorum.audit.chain import ensure_head
    from keyquorum.storage.engine import alembic_config

    engine = open_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as conn:  # a store as the previous release left it
        config = alembic_config(engine)
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        for n in range(1, 4):
            conn.execute(text(
                "INSERT INTO audit_records (time, request_id, operation, outcome) "
                "VALUES (:t, :r, 'encrypt', 'ok')"), {"t": float(n), "r": f"old-{n}"})
    migrate(engine)
    head = ensure_head(engine)
    assert head.seq == 3
    assert ensure_head(engine) == head  # idempotent
    audit = AuditLog(engine)
    audit.start()
    trail = AuditTrail(engine, audit, SystemClock())
    trail.open(Barrier(Keyring.generate()))
    assert trail.unseal_checkpoint_done()  # its signature lands before our writes
    audit.write_sync(record(4))
    report = trail.verify()
    audit.stop()
    assert report.ok and report.records == 4
