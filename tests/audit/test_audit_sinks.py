"""Audit sinks: what reaches them, and what a failing, full or hung sink does to callers.

Real files, a real FIFO (a sink nobody reads hangs in open(), like a stuck NFS
mount), /dev/full (a full disk) and a real UDP syslog listener.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from keyquorum.audit.log import AuditLog
from keyquorum.audit.offline import verify_file
from keyquorum.audit.records import AuditRecord
from keyquorum.audit.sinks import SinkSet, parse_sink_configs
from keyquorum.audit.trail import AuditTrail
from keyquorum.clock import SystemClock
from keyquorum.errors import AuditUnavailable
from keyquorum.seal.barrier import Barrier, Keyring
from keyquorum.storage.engine import migrate, open_engine


def record(n: int) -> AuditRecord:
    return AuditRecord(time=1_700_000_000.0 + n, request_id=f"req-{n}", identity="acc",
                       operation="decrypt", key="app/k", key_version=1, outcome="ok",
                       error_code=None, client="127.0.0.1")


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = open_engine(f"sqlite:///{tmp_path / 'kq.db'}")
    migrate(engine)
    return engine


def stored_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM audit_records")).scalar_one())


def start_log(engine: Engine, sinks: list[dict[str, Any]]) -> AuditLog:
    audit = AuditLog(engine, sinks=SinkSet.from_configs(parse_sink_configs(sinks)))
    audit.start()
    return audit


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    """A FIFO with no reader; unblocked at the end so the sink's thread can finish."""
    path = tmp_path / "hung.fifo"
    os.mkfifo(path)
    yield path
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    time.sleep(0.05)
    os.close(reader)


def test_a_file_sink_holds_the_chain_and_verifies_on_its_own(
        engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    audit = start_log(engine, [{"name": "file", "type": "file", "path": str(path)}])
    trail = AuditTrail(engine, audit, SystemClock())
    trail.open(Barrier(Keyring.generate()))
    assert trail.unseal_checkpoint_done()  # its signature lands before our writes
    for n in range(1, 6):
        audit.write_sync(record(n))
    trail.checkpoint()
    audit.write_sync(record(6))
    audit.stop()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    report = verify_file(path, trail.keys.public_pem)
    assert report.ok and report.records == 6 and report.last_checkpoint == 5
    assert audit.sinks.status()[0]["delivered"] == 7  # six records and one checkpoint


def test_a_file_sink_rotates_by_size_and_keeps_the_newest_files(
        engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    audit = start_log(engine, [{"name": "file", "type": "file", "path": str(path),
                                "max_bytes": 4096, "keep": 2, "fsync": False}])
    for n in range(200):
        audit.write_sync(record(n))
    audit.stop()
    rotated = sorted(p.name for p in tmp_path.glob("audit.jsonl*"))
    assert rotated == ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]
    assert (tmp_path / "audit.jsonl.1").stat().st_size >= 4096
    assert b"req-199" in path.read_bytes()


def test_a_required_sink_that_fails_fails_the_operation_and_stores_nothing(
        engine: Engine) -> None:
    audit = start_log(engine, [{"name": "full", "type": "file", "path": "/dev/full",
                                "policy": "required"}])
    with pytest.raises(AuditUnavailable):
        audit.write_sync(record(1))
    assert stored_count(engine) == 0
    # A change made in its own transaction rolls back too: nothing half-written.
    with pytest.raises(AuditUnavailable), engine.begin() as conn:
        conn.execute(text("INSERT INTO policies (name, rules, created_at, updated_at) "
                          "VALUES ('p', '[]', 0, 0)"))
        audit.append_in(conn, [record(2)])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM policies")).scalar_one() == 0
    assert stored_count(engine) == 0
    status = audit.sinks.status()[0]
    assert status["failures"] >= 2 and not status["healthy"]
    assert status["last_error"] == "OSError"
    audit.stop()


def test_a_best_effort_sink_that_hangs_is_timed_out_counted_and_ignored(
        engine: Engine, fifo: Path) -> None:
    audit = start_log(engine, [{"name": "hung", "type": "file", "path": str(fifo),
                                "policy": "best-effort", "timeout": 0.2}])
    started = time.monotonic()
    for n in range(1, 4):
        audit.write_sync(record(n))
    time.sleep(0.3)  # the sink's first write is now stuck past its timeout
    for n in range(4, 7):
        audit.write_sync(record(n))
    assert time.monotonic() - started < 3  # nobody waited on the hung sink
    assert stored_count(engine) == 6
    status = audit.sinks.status()[0]
    assert status["failures"] >= 1 and status["last_error"] == "timeout"
    assert not status["healthy"]
    audit.stop()


def test_a_required_sink_that_hangs_fails_within_its_timeout_and_then_at_once(
        engine: Engine, fifo: Path) -> None:
    audit = start_log(engine, [{"name": "hung", "type": "file", "path": str(fifo),
                                "policy": "required", "timeout": 0.3}])
    started = time.monotonic()
    with pytest.raises(AuditUnavailable):
        audit.write_sync(record(1))
    assert 0.25 < time.monotonic() - started < 2
    started = time.monotonic()
    with pytest.raises(AuditUnavailable):
        audit.write_sync(record(2))
    assert time.monotonic() - started < 0.25  # known stuck: no second wait
    assert stored_count(engine) == 0
    assert audit.sinks.status()[0]["last_error"] == "timeout"
    audit.stop()


def test_a_syslog_sink_sends_rfc5424_messages(engine: Engine) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(5)
    port = listener.getsockname()[1]
    received: list[bytes] = []
    thread = threading.Thread(target=lambda: received.extend(
        listener.recvfrom(65536)[0] for _ in range(2)))
    thread.start()
    audit = start_log(engine, [{"name": "syslog", "type": "syslog",
                                "address": f"udp://127.0.0.1:{port}", "policy": "required"}])
    audit.write_sync(record(1))
    audit.write_sync(record(2))
    thread.join(5)
    listener.close()
    audit.stop()
    assert len(received) == 2
    assert received[0].startswith(b"<85>1 ")  # authpriv.notice, RFC 5424 version 1
    assert b" keyquorum " in received[0] and b'"request_id":"req-1"' in received[0]


@pytest.mark.parametrize(("sinks", "message"), [
    ("not a list", "must be a list"),
    ([{"name": "a", "type": "kafka"}], "type must be one of"),
    ([{"name": "a", "type": "file"}], "needs a path"),
    ([{"name": "a", "type": "file", "path": "/x", "colour": "red"}], "unknown field"),
    ([{"name": "a", "type": "file", "path": "/x", "policy": "maybe"}], "policy must be"),
    ([{"name": "a", "type": "file", "path": "/x", "timeout": 0}], "timeout must be"),
    ([{"name": "a", "type": "file", "path": "/x", "max_bytes": 10}], "max_bytes"),
    ([{"name": "a", "type": "syslog", "address": "http://x"}], "address must be"),
    ([{"name": "a", "type": "syslog", "facility": "kern"}], "facility must be"),
    ([{"name": "a b", "type": "file", "path": "/x"}], "name must be"),
    ([{"name": "a", "type": "file", "path": "/x"}, {"name": "a", "type": "file",
                                                     "path": "/y"}], "unique"),
])
def test_bad_sink_configurations_are_refused_at_start(sinks: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_sink_configs(sinks)
