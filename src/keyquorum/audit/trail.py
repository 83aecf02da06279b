"""The audit trail as a service: keys, braids, verification and export of the live log.

``AuditLog`` writes records; this module holds what needs the unsealed barrier
(the audit keys) or reads every node's chain back (verify, export).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from keyquorum.audit.chain import ChainHead, read_heads
from keyquorum.audit.checkpoints import Checkpoint, make_checkpoint, stored_checkpoints
from keyquorum.audit.export import (
    checkpoint_line,
    end_line,
    header_line,
    node_line,
    record_line,
)
from keyquorum.audit.keys import AUDIT_KEYS_ENTRY, AuditKeys
from keyquorum.audit.log import AuditLog
from keyquorum.audit.verify import Fault, VerifyReport, verify_chain
from keyquorum.clock import Clock
from keyquorum.errors import Sealed
from keyquorum.seal.barrier import Barrier
from keyquorum.storage.audit_repo import LEGACY_NODE, newest_seqs, node_registry, records_between
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
        """Sign a braid of every node's head now (if unsealed); this node's entry, which
        carries the whole braid, also goes to every sink and is returned."""
        keys = self._keys
        if keys is None:
            return None
        with self._lock, self._engine.begin() as conn:
            made = make_checkpoint(conn, keys, self._clock.now(), only_if_grown=only_if_grown,
                                   node=self._audit.node_id)
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

    # -- reading the chains back ------------------------------------------------------------

    def _records(self, upto: int, node: int = LEGACY_NODE) -> Iterator[dict[str, Any]]:
        """The node's records 1..``upto`` in chain order, a page at a time (no long-held
        read transaction)."""
        after = 0
        while True:
            with self._engine.connect() as conn:
                rows = records_between(conn, after, upto, _PAGE, node)
            if not rows:
                return
            yield from rows
            after = rows[-1]["seq"]

    def _all_records(self, heads: dict[int, ChainHead]) -> Iterator[dict[str, Any]]:
        for node in sorted(heads):
            yield from self._records(heads[node].seq, node)

    def _snapshot(self) -> tuple[dict[int, ChainHead], list[Checkpoint], dict[int, int]]:
        """Checkpoints first, then the registry, then the heads: heads only move forward,
        so on PostgreSQL (a snapshot per statement) no braid read names a link beyond
        the heads read after it, and every registered node read has its head."""
        with self._engine.connect() as conn:
            checkpoints = stored_checkpoints(conn)
            registry = {node: first for node, (_name, first) in node_registry(conn).items()}
            heads = read_heads(conn)
        if not heads:
            heads = {LEGACY_NODE: ChainHead(0, "0" * 64)}
        return heads, checkpoints, registry

    def verify(self, trusted: Sequence[Checkpoint] = ()) -> VerifyReport:
        """Check every live chain up to the heads read now, every braid, plus checkpoints
        held outside."""
        heads, checkpoints, registry = self._snapshot()
        report = verify_chain(self._all_records(heads), [*checkpoints, *trusted],
                              self.keys.public_pem, heads=heads, registry=registry)
        if report.ok:
            # Records beyond a head were not appended by the service (which moves the head
            # in the same transaction). Newest places first, heads second: a legitimate
            # append committed before the places were read is covered by the heads after.
            with self._engine.connect() as conn:
                newest = newest_seqs(conn)
                now_heads = read_heads(conn)
            for node, seq in sorted(newest.items()):
                now_head = now_heads.get(node, ChainHead(0, ""))
                if seq > now_head.seq:
                    report = replace(report, ok=False, first_bad=Fault(
                        now_head.seq + 1, f"records {now_head.seq + 1}-{seq} lie beyond the "
                        "chain head: they were added outside the service", node))
                    break
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
        """The export file's lines: header, (several nodes: the registry), each node's
        records with each of its checkpoints after its record, then one end per node.

        Keys and the heads are read now (``Sealed`` is raised here, not mid-stream).
        """
        keys = self.keys
        heads, checkpoints, registry = self._snapshot()
        return self._export_lines(keys, heads, checkpoints, registry)

    def _export_lines(self, keys: AuditKeys, heads: dict[int, ChainHead],
                      checkpoints: list[Checkpoint], registry: dict[int, int]
                      ) -> Iterator[bytes]:
        several = set(heads) != {LEGACY_NODE} or set(registry) - {LEGACY_NODE}
        yield header_line(self._clock.now(), keys.public_pem, keys.key_id,
                          version=2 if several else 1)
        if several:
            for node, first_braid in sorted(registry.items()):
                yield node_line(node, first_braid)
        for node, head in sorted(heads.items()):
            pending = sorted((c for c in checkpoints if c.node == node and c.seq <= head.seq),
                             key=lambda c: c.seq)
            index = 0
            for row in self._records(head.seq, node):
                yield record_line(row)
                while index < len(pending) and pending[index].seq <= row["seq"]:
                    yield checkpoint_line(pending[index])
                    index += 1
            for checkpoint in pending[index:]:  # an empty chain's braid entries
                yield checkpoint_line(checkpoint)
        for node, head in sorted(heads.items()):
            yield end_line(head, node)
