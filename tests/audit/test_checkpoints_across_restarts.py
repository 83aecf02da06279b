"""Issue 12: audit checkpoints are signed at start, at unseal and at a clean shutdown.

A checkpoint is signed with the audit key, which lives under the barrier, so a
sealed service cannot sign; the interval job alone would leave a service that
restarts more often than the interval with an ever longer unsigned tail. Now a
clean stop signs what its run wrote, and the first unseal after a start signs what
was written while sealed (and what a crashed run left). A server process, since
starting and stopping it is the point; the store is read directly between runs.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine

from keyquorum.audit.chain import read_head
from keyquorum.storage.audit_repo import last_checkpoint_seq
from kq_support import ServerProcess


def _head_and_signed(data_dir: Path) -> tuple[int, int]:
    """The chain head and the last signed checkpoint, read from the stopped server's store."""
    engine = create_engine(f"sqlite:///{data_dir / 'keyquorum.db'}")
    try:
        with engine.connect() as conn:
            head = read_head(conn)
            signed = last_checkpoint_seq(conn)
    finally:
        engine.dispose()
    assert head is not None
    return head.seq, signed or 0


def _write_records(server: ServerProcess, run: int) -> None:
    with server.client() as http:
        for n in range(3):
            made = http.post("/v1/keys", json={"name": f"restart/{run}/{n}",
                                               "spec": "aes-256-gcm"})
            assert made.status_code in (200, 201), made.text


def _verify(server: ServerProcess) -> dict:
    with server.client() as http:
        report: dict = http.post("/v1/audit/verify", json={}).json()
    assert report["ok"], report
    return report


def _signed_since_unseal(server: ServerProcess, before: int) -> dict:
    """The verification once the unseal's checkpoint (signed off the request path) is in."""
    deadline = time.monotonic() + 10
    while True:
        report = _verify(server)
        if (report["last_checkpoint"] or 0) >= before or time.monotonic() > deadline:
            return report
        time.sleep(0.05)


@pytest.mark.server
def test_a_clean_stop_signs_the_tail_and_every_unseal_signs_what_came_before(
        fresh_server: ServerProcess) -> None:
    server = fresh_server
    server.init()
    server.unseal()
    _write_records(server, 0)
    server.stop()  # SIGTERM: a clean shutdown
    head, signed = _head_and_signed(server.data_dir)
    assert head > 5 and signed == head  # the shutdown checkpoint covers the whole tail

    for run in range(1, 4):
        server.start()  # sealed: nothing can be signed yet
        refused = httpx.post(f"{server.addr}/v1/sys/unseal", json={"share": "kqs1-nonsense"},
                             timeout=30)
        assert refused.status_code == 400  # a record written while sealed
        server.unseal()
        # What came before the unseal (the refusal, the first share) is signed now; only
        # the unseal's own last record and what follows may be unsigned.
        report = _signed_since_unseal(server, head + 2)
        assert report["last_checkpoint"] >= head + 2 and report["unsigned_tail"] <= 2
        _write_records(server, run)
        assert _verify(server)["unsigned_tail"] <= 2 + 3 + 1  # + the keys + one verify
        server.stop()
        head, signed = _head_and_signed(server.data_dir)
        assert signed == head, f"run {run}: {head - signed} records left unsigned at stop"


@pytest.mark.server
def test_the_tail_a_crashed_run_left_is_signed_at_the_next_unseal(
        fresh_server: ServerProcess) -> None:
    server = fresh_server
    server.init()
    server.unseal()
    _write_records(server, 0)
    server.stop(signal.SIGKILL)  # no shutdown: the tail stays unsigned
    head, signed = _head_and_signed(server.data_dir)
    assert signed < head
    server.start()
    server.unseal()
    report = _signed_since_unseal(server, head)
    assert report["last_checkpoint"] >= head and report["unsigned_tail"] <= 2
