"""The unit of work: a state change, its audit record and its change events, together.

Every change to what the service holds (policies, tokens, audit sinks,
approvals; keys go through the same steps in ``lifecycle``) opens one
transaction, makes its writes, appends its audit record *inside that
transaction*, commits, and only then announces typed events, applied here
and sent to sibling workers. So:

- if the audit record cannot be written, the transaction rolls back and the
  change did not happen (fail closed: no policy, revocation or sink removal
  ever lands unrecorded);
- nobody (this process's caches, other workers) hears of a change before it
  is durable, and routes never announce anything: events are emitted here,
  after commit, from the change that caused them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine

from keyquorum.audit.in_transaction import write_audit_in
from keyquorum.audit.log import AuditLog
from keyquorum.clock import Clock
from keyquorum.service.context import RequestContext


@dataclass(frozen=True)
class ChangeEvent:
    """Something other workers' caches must learn after a commit."""

    def to_wire(self) -> dict[str, Any]:  # pragma: no cover - every event overrides it
        raise NotImplementedError


@dataclass(frozen=True)
class TokenRevoked(ChangeEvent):
    accessor: str

    def to_wire(self) -> dict[str, Any]:
        return {"op": "token", "accessor": self.accessor}


@dataclass(frozen=True)
class AccessKeyRevoked(ChangeEvent):
    accessor: str

    def to_wire(self) -> dict[str, Any]:
        return {"op": "access-key", "accessor": self.accessor}


@dataclass(frozen=True)
class PoliciesChanged(ChangeEvent):
    def to_wire(self) -> dict[str, Any]:
        return {"op": "policies"}


@dataclass(frozen=True)
class SinksChanged(ChangeEvent):
    def to_wire(self) -> dict[str, Any]:
        return {"op": "audit-sinks"}


@dataclass(frozen=True)
class KeyChanged(ChangeEvent):
    key_id: str

    def to_wire(self) -> dict[str, Any]:
        return {"op": "key", "id": self.key_id}


@dataclass
class Change:
    """The open unit of work: its connection, and facts the block learns as it runs."""

    conn: Connection
    key: str | None = None
    key_version: int | None = None
    # Facts for the record that the block learns as it runs (what it erased, which
    # approval it consumed); written with the record, never through ``ctx.detail``.
    detail: dict[str, str] = field(default_factory=dict)
    # Events only the block can know (e.g. every token a revocation reached), applied
    # after commit with the ones given to ``audited``.
    events: list[ChangeEvent] = field(default_factory=list)


class UnitOfWork:
    """Opens audited changes; ``apply`` installs an event here and tells the siblings."""

    def __init__(self, engine: Engine, audit: AuditLog, clock: Clock,
                 apply: Callable[[ChangeEvent], None]) -> None:
        self._engine = engine
        self._audit = audit
        self._clock = clock
        self._apply = apply

    @contextmanager
    def audited(self, ctx: RequestContext, operation: str, *, key: str | None = None,
                events: tuple[ChangeEvent, ...] = (),
                detail: Mapping[str, str] | None = None) -> Iterator[Change]:
        """One transaction: the block's writes, then the record; events after commit.

        If the block raises, nothing is written (its refusal is audited by the
        pipeline as usual). If the record cannot be written, the block's writes
        roll back with it and ``AuditUnavailable`` (or ``StorageUnavailable``) is
        raised: the change did not happen.
        """
        with self._engine.begin() as conn:
            change = Change(conn, key=key, detail=dict(detail or {}))
            yield change
            write_audit_in(self._audit, conn, ctx, operation=operation, key=change.key,
                           key_version=change.key_version, now=self._clock.now(),
                           detail=change.detail)
        ctx.audited = True
        for event in (*events, *change.events):
            self._apply(event)
