"""The audit trail as a service: keys, checkpoints, verification and export of the live log.

``AuditLog`` writes records; this module holds what needs the unsealed barrier
(the audit keys) or reads the whole chain back (verify, export).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from keyquorum.audit.chain import ChainHead, read_head
from keyquorum.audit.checkpoints import Checkpoint, make_checkpoint, stored_checkpoints
from keyquorum.audit.export import checkpoint_line, end_line, header_line, record_line
from keyquorum.audit.keys import AUDIT_KEYS_ENTRY, AuditKeys
from keyquorum.audit.log import AuditLog
from keyquorum.audit.verify import Fault, VerifyReport, verify_chain
from keyquorum.clock import Clock
from keyquorum.errors import Sealed
from keyquorum.seal.barrier import Barrier
from keyquorum.storage.audit_repo import newest_record_id, records_between
from keyquorum.storage.system_repo import get_entry, insert_entry

log = logging.getLogger("keyquorum.audit")
_PAGE = 2000


def load_or_create_keys(engine: Engine, barrier: Barrier, now: float) -> AuditKeys:
    """The audit keys from the barrier, created on the first unseal of a store without them."""
    with engine.connect() as conn:
        blob = get_entry(conn, AUDIT_KEYS_ENTRY)
    if blob is None:
        material = AuditKeys.generate_material()
        try:
            with engine.begin() as conn:
                insert_entry(conn, AUDIT_KEYS_ENTRY,
                             barrier.encrypt(AUDIT_KEYS_ENTRY, material), now)
            return AuditKeys(material)
        except IntegrityError:  # another worker created them first: use theirs
            with engine.connect() as conn:
                blob = get_entry(conn, AUDIT_KEYS_ENTRY)
            assert blob is not None
    return AuditKeys(barrier.decrypt(AUDIT_KEYS_ENTRY, blob))


class AuditTrail:
    """Checkpoints, verification and export over one store's audit chain."""

    def __init__(self, engine: Engine, audit: AuditLog, clock: Clock) -> None:
        self._engine = engine
        self._audit = audit
        self._clock = clock
        self._keys: AuditKeys | None = None
        self._unseal_checkpoint: threading.Thread | None = None
        self._lock = threading.Lock()
        # The newest full verification (when, what it found): evidence for reports.
        self.last_verification: tuple[float, VerifyReport] | None = None

    # -- keys ------------------------------------------------------------------------------

    def open(self, barrier: Barrier) -> None:
        """Load the audit keys, then sign the head (``checkpoint_quietly``): what was
        written while sealed, and the tail a crashed run left, gets its signature at
        unseal, not at the next interval (which a service restarting often may never see).

        The signing runs on a thread of its own, so opening is not held up by it: with
        ``--workers N`` every worker opens at once and all but one find nothing to sign.
        """
        self._keys = load_or_create_keys(self._engine, barrier, self._clock.now())
        signing = threading.Thread(target=self.checkpoint_quietly, args=("unseal",),
                                   name="keyquorum-checkpoint", daemon=True)
        self._unseal_checkpoint = signing
        signing.start()

    def unseal_checkpoint_done(self, timeout: float = 10.0) -> bool:
        """Wait for the checkpoint ``open`` started; False if it is still running.

        For callers that must know what the log holds next (tests counting records,
        a drill): otherwise the signature may land before or after their own writes.
        """
        signing = self._unseal_checkpoint
        if signing is not None:
            signing.join(timeout)
            return not signing.is_alive()
        return True

    def close(self) -> None:
        self._keys = None
        self.last_verification = None  # evidence is never carried across a seal

    @property
    def keys(self) -> AuditKeys:
        keys = self._keys
        if keys is None:
            raise Sealed()
        return keys

    @property
    def keys_or_none(self) -> AuditKeys | None:
        return self._keys

    def hash_value(self, value: str) -> str:
        return self.keys.hash_value(value)

    # -- checkpoints -----------------------------------------------------------------------

    def checkpoint(self, *, only_if_grown: bool = False) -> Checkpoint | None:
        """Sign the head now (if unsealed); the checkpoint also goes to every sink."""
        keys = self._keys
        if keys is None:
            return None
        with self._lock, self._engine.begin() as conn:
            made = make_checkpoint(conn, keys, self._clock.now(), only_if_grown=only_if_grown)
            if made is not None:
                self._audit.sinks.deliver_lines([checkpoint_line(made)])
        return made

    def checkpoint_quietly(self, when: str) -> Checkpoint | None:
        """Sign the head if it moved since the last checkpoint; never raise.

        Called at start (if the service is unsealed by then), at unseal and at a clean
        shutdown, besides the interval and seal: so the records after the last signed
        checkpoint are never more than those since the last of these moments, however
        often the service restarts. A failure is logged (its type only) and left to the
        next moment: starting, unsealing or stopping must not fail for it.
        """
        try:
            return self.checkpoint(only_if_grown=True)
        except Exception as exc:
            log.error("audit checkpoint at %s failed (%s)", when, type(exc).__name__)
            return None

    # -- reading the chain back -------------------------------------------------------------

    def _records(self, upto: int) -> Iterator[dict[str, Any]]:
        """Records 1..``upto`` in chain order, a page at a time (no long-held read transaction)."""
        after = 0
        while True:
            with self._engine.connect() as conn:
                rows = records_between(conn, after, upto, _PAGE)
            if not rows:
                return
            yield from rows
            after = rows[-1]["id"]

    def _snapshot(self) -> tuple[ChainHead, list[Checkpoint]]:
        with self._engine.connect() as conn:
            head = read_head(conn) or ChainHead(0, "0" * 64)
            return head, stored_checkpoints(conn)

    def verify(self, trusted: Sequence[Checkpoint] = ()) -> VerifyReport:
        """Check the live chain up to the head read now, plus checkpoints held outside."""
        head, checkpoints = self._snapshot()
        report = verify_chain(self._records(head.seq), [*checkpoints, *trusted],
                              self.keys.public_pem, head=head)
        if report.ok:
            # Records beyond the head were not appended by the service (which moves the head
            # in the same transaction). Newest id first, head second: a legitimate append
            # committed before the id was read is always covered by the head read after it.
            with self._engine.connect() as conn:
                newest = newest_record_id(conn)
                now_head = read_head(conn) or ChainHead(0, "0" * 64)
            if newest > now_head.seq:
                report = replace(report, ok=False, first_bad=Fault(
                    now_head.seq + 1, f"records {now_head.seq + 1}-{newest} lie beyond the "
                    "chain head: they were added outside the service"))
        if not trusted:
            self.last_verification = (self._clock.now(), report)
        return report

    def recent_verification(self, max_age: float) -> tuple[float, VerifyReport]:
        """The newest full verification if younger than ``max_age`` seconds, else a new one.

        A full check reads every record, so reports reuse a recent one instead of
        scanning the whole log on every request.
        """
        last = self.last_verification
        if last is not None and self._clock.now() - last[0] <= max_age:
            return last
        self.verify()
        assert self.last_verification is not None
        return self.last_verification

    def export(self) -> Iterator[bytes]:
        """The export file's lines: header, records with each checkpoint after its record, end.

        Keys and the head are read now (``Sealed`` is raised here, not mid-stream).
        """
        keys = self.keys
        head, checkpoints = self._snapshot()
        return self._export_lines(keys, head, checkpoints)

    def _export_lines(self, keys: AuditKeys, head: ChainHead,
                      checkpoints: list[Checkpoint]) -> Iterator[bytes]:
        yield header_line(self._clock.now(), keys.public_pem, keys.key_id)
        pending = sorted((c for c in checkpoints if c.seq <= head.seq), key=lambda c: c.seq)
        index = 0
        for row in self._records(head.seq):
            yield record_line(row)
            while index < len(pending) and pending[index].seq <= row["id"]:
                yield checkpoint_line(pending[index])
                index += 1
        yield end_line(head)
