"""Policy rows: name and rules (JSON text), no rules about them.

Every function takes the caller's connection, so a policy change and its audit
record can share one transaction. The rules are stored and returned as JSON text:
parsing them (and ignoring a row that does not parse) is the policy store's job.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select, update

from keyquorum.storage.schema import policies


@dataclass(frozen=True, slots=True)
class PolicyRow:
    name: str
    rules: str  # JSON text, as written by ``upsert_policy``


def list_policies(conn: Connection) -> list[PolicyRow]:
    """Every stored policy row (built-ins are not stored)."""
    rows = conn.execute(select(policies.c.name, policies.c.rules))
    return [PolicyRow(str(name), str(rules)) for name, rules in rows]


def upsert_policy(conn: Connection, name: str, rules: str, now: float) -> None:
    """Replace the rules of ``name``, or create it (``IntegrityError`` if a concurrent
    insert wins the race; the caller decides whether to retry)."""
    changed = conn.execute(update(policies).where(policies.c.name == name)
                           .values(rules=rules, updated_at=now)).rowcount
    if not changed:
        conn.execute(insert(policies).values(
            name=name, rules=rules, created_at=now, updated_at=now))


def delete_policy(conn: Connection, name: str) -> bool:
    """Delete the row of ``name``; whether there was one."""
    return bool(conn.execute(delete(policies).where(policies.c.name == name)).rowcount)
