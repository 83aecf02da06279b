"""Read-only questions the reports and the metrics ask the store: counts and facts, no rules.

The inventory and compliance reports (``reports/``) and the scrape-time gauges
(``metrics/collector.py``) judge what these return; nothing here judges or writes.
Keys themselves are read through ``keys_repo`` (``iter_keys``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Connection, and_, func, select

from keyquorum.keys.states import KeyState, VersionState
from keyquorum.storage.schema import audit_records, key_versions, keys


@dataclass(frozen=True, slots=True)
class OutcomeCounts:
    """Audit records matching a question: how many per outcome, and the latest time."""

    by_outcome: dict[str, int]
    last_at: float | None


@dataclass(frozen=True, slots=True)
class PrimaryAge:
    """An enabled key's rotation facts: its spec and own crypto-period, its next
    rotation, and when its primary version became active (or was created)."""

    spec: str
    crypto_period: int | None
    next_rotation: float | None
    activated_at: float | None
    purpose: str | None = None


def audit_outcomes(conn: Connection, *, key: str, version: int, operations: tuple[str, ...],
                   since: float, outcome: str | None = None) -> OutcomeCounts:
    """Audit records about ``key`` (by name) at ``version`` for ``operations``, after
    ``since`` (and of ``outcome`` only, if given), counted by outcome."""
    table = audit_records
    conditions = [table.c.key == key, table.c.key_version == version,
                  table.c.operation.in_(operations), table.c.time > since]
    if outcome is not None:
        conditions.append(table.c.outcome == outcome)
    rows = conn.execute(select(table.c.outcome, func.count(), func.max(table.c.time))
                        .where(and_(*conditions)).group_by(table.c.outcome)).all()
    last = max((row[2] for row in rows), default=None)
    return OutcomeCounts({row[0]: int(row[1]) for row in rows}, last)


def destroyed_with_material(conn: Connection) -> dict[str, list[int]]:
    """Key name → versions marked destroyed whose material is still stored."""
    found: dict[str, list[int]] = {}
    rows = conn.execute(select(keys.c.name, key_versions.c.version).join(
        keys, keys.c.id == key_versions.c.key_id).where(and_(
            key_versions.c.state == VersionState.DESTROYED.value,
            key_versions.c.material.is_not(None))))
    for name, version in rows:
        found.setdefault(name, []).append(int(version))
    return found


def enabled_primary_ages(conn: Connection) -> list[PrimaryAge]:
    """The rotation facts of every enabled key, in one query."""
    primary = key_versions
    statement = select(keys.c.spec, keys.c.crypto_period, keys.c.next_rotation,
                       func.coalesce(primary.c.activated_at, primary.c.created_at),
                       keys.c.purpose).select_from(
        keys.outerjoin(primary, and_(primary.c.key_id == keys.c.id,
                                     primary.c.version == keys.c.primary_version))).where(
        keys.c.state == KeyState.ENABLED.value)
    return [PrimaryAge(spec, own_period, next_rotation, activated, purpose)
            for spec, own_period, next_rotation, activated, purpose
            in conn.execute(statement)]


def keys_by_state(conn: Connection) -> dict[str, int]:
    """Stored key state → number of keys (states without keys are absent)."""
    return _count_by(conn, keys.c.state)


def versions_by_state(conn: Connection) -> dict[str, int]:
    """Stored version state → number of key versions (states without versions are absent)."""
    return _count_by(conn, key_versions.c.state)


def _count_by(conn: Connection, column: Column[Any]) -> dict[str, int]:
    return {str(state): int(n) for state, n in
            conn.execute(select(column, func.count()).group_by(column))}
