"""Checking an audit chain, live or exported, and naming the first record that is wrong.

The same checker runs on the live database (``POST /v1/audit/verify``) and on
an export file with no server (``keyquorum audit verify --file``). It streams
records in chain order and stops at the first fault:

- a record missing (a gap in the sequence), repeated or out of order;
- a record whose link does not match (changed, inserted or moved);
- a signed checkpoint whose signature is bad, or that was made by another key;
- a chain that does not reach a checkpoint's link (edited and relinked by
  someone without the signing key), or that ends before a checkpoint's record
  (the tail was cut behind a checkpoint held outside);
- for the live log, a chain head that disagrees with the last record.

Records after the last checkpoint are protected by the chain alone; the report
says how many, so an auditor knows what a signature vouches for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from keyquorum.audit.chain import GENESIS, ChainHead, link
from keyquorum.audit.checkpoints import Checkpoint
from keyquorum.audit.keys import key_id_of


@dataclass(frozen=True, slots=True)
class Fault:
    """The first thing found wrong: the record it concerns and why."""

    id: int
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class VerifyReport:
    ok: bool
    records: int
    head: ChainHead
    checkpoints: int
    last_checkpoint: int | None
    first_bad: Fault | None = None

    @property
    def unsigned_tail(self) -> int:
        """Records after the last good checkpoint: protected by the chain, not a signature."""
        return self.head.seq - (self.last_checkpoint or 0)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": self.ok, "records": self.records,
            "head": {"seq": self.head.seq, "chain_hash": self.head.chain_hash},
            "checkpoints": self.checkpoints, "last_checkpoint": self.last_checkpoint,
            "unsigned_tail": self.unsigned_tail,
        }
        if self.first_bad is not None:
            body["first_bad"] = self.first_bad.to_json()
        return body


class _Stop(Exception):
    def __init__(self, fault: Fault) -> None:
        self.fault = fault


def _check_signatures(checkpoints: Sequence[Checkpoint], public_pem: str) -> None:
    key_id = key_id_of(public_pem)
    for checkpoint in checkpoints:
        if checkpoint.key_id != key_id:
            raise _Stop(Fault(checkpoint.seq, f"the checkpoint at record {checkpoint.seq} was "
                              "signed by another key"))
        if not checkpoint.signature_valid(public_pem):
            raise _Stop(Fault(checkpoint.seq, f"the checkpoint at record {checkpoint.seq} has "
                              "a bad signature"))


def verify_chain(records: Iterable[dict[str, Any]], checkpoints: Sequence[Checkpoint],
                 public_pem: str, *, head: ChainHead | None = None) -> VerifyReport:
    """Check ``records`` (in stored order) against their links, ``checkpoints`` and ``head``."""
    pinned: dict[int, list[Checkpoint]] = {}
    for checkpoint in checkpoints:
        pinned.setdefault(checkpoint.seq, []).append(checkpoint)
    count, previous, expected = 0, GENESIS, 1
    last_good_checkpoint: int | None = None
    fault: Fault | None = None
    try:
        _check_signatures(checkpoints, public_pem)
        for row in records:
            record_id = row["id"]
            if record_id != expected:
                if record_id > expected:
                    raise _Stop(Fault(expected, f"record {expected} is missing: the log jumps "
                                      f"from {expected - 1} to {record_id}"))
                raise _Stop(Fault(expected, f"where record {expected} should be, record "
                                  f"{record_id} appears (repeated, inserted or out of order)"))
            computed = link(previous, row)
            if computed != row["chain_hash"]:
                raise _Stop(Fault(record_id, f"record {record_id} does not match its link: it "
                                  "was changed, inserted or moved"))
            for checkpoint in pinned.get(record_id, ()):
                if checkpoint.chain_hash != computed:
                    first = (last_good_checkpoint or 0) + 1
                    raise _Stop(Fault(first, f"the chain does not reach the signed checkpoint "
                                      f"at record {record_id}: records {first}-{record_id} were "
                                      "altered and relinked"))
                last_good_checkpoint = record_id
            previous, expected, count = computed, expected + 1, count + 1
        last = expected - 1
        beyond = [seq for seq in pinned if seq > last]
        if beyond:
            raise _Stop(Fault(last + 1, f"the log ends at record {last} but a signed checkpoint "
                              f"covers record {max(beyond)}: the tail was cut"))
        if head is not None and (head.seq, head.chain_hash) != (last, previous):
            if head.seq > last:
                raise _Stop(Fault(last + 1, f"the chain head names record {head.seq} but the "
                                  f"log ends at record {last}: the tail was cut"))
            raise _Stop(Fault(min(head.seq + 1, last), "the chain head does not match the last "
                              "record: records were added or changed outside the service"))
    except _Stop as stop:
        fault = stop.fault
    return VerifyReport(ok=fault is None, records=count,
                        head=ChainHead(expected - 1, previous), checkpoints=len(checkpoints),
                        last_checkpoint=last_good_checkpoint, first_bad=fault)
