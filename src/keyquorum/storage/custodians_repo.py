"""Custodian rows (one per share of a seal generation) and their proof challenges."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, and_, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from keyquorum.storage.schema import custodian_challenges, custodians


@dataclass(frozen=True)
class CustodianRow:
    index: int
    name: str
    issued_at: float | None
    last_verified_at: float | None
    verified_by: str | None


@dataclass(frozen=True)
class ChallengeRow:
    id: str
    custodian_index: int
    generation: int
    challenge: bytes = field(repr=False)
    expires_at: float = 0.0
    used_at: float | None = None


def list_custodians(conn: Connection, generation: int) -> list[CustodianRow]:
    c = custodians.c
    rows = conn.execute(select(c.index, c.name, c.issued_at, c.last_verified_at, c.verified_by)
                        .where(c.generation == generation).order_by(c.index))
    # ``index`` by position: a Row's ``.index`` is the tuple method.
    return [CustodianRow(int(r[0]), r.name, r.issued_at, r.last_verified_at, r.verified_by)
            for r in rows]


def insert_custodians(conn: Connection, generation: int, names: tuple[str, ...],
                      issued_at: float | None) -> None:
    """Rows for every share of ``generation``; issued now counts as verified now."""
    conn.execute(custodians.insert(), [
        {"generation": generation, "index": i, "name": name, "issued_at": issued_at,
         "last_verified_at": issued_at, "verified_by": "issued" if issued_at else None}
        for i, name in enumerate(names, start=1)])


def ensure_custodians(engine: Engine, generation: int, names: tuple[str, ...]
                      ) -> list[CustodianRow]:
    """The rows of ``generation``, first made for a store from before custodians were
    recorded (never issued here, never verified).

    Its own transaction: another worker may create them at the same moment, and
    its rows are as good as ours.
    """
    with engine.connect() as conn:
        rows = list_custodians(conn, generation)
    if rows:
        return rows
    try:
        with engine.begin() as conn:
            insert_custodians(conn, generation, names, None)
    except IntegrityError:
        pass
    with engine.connect() as conn:
        return list_custodians(conn, generation)


def mark_verified(conn: Connection, generation: int, index: int, now: float, how: str) -> None:
    c = custodians.c
    conn.execute(update(custodians).where(and_(c.generation == generation, c.index == index))
                 .values(last_verified_at=now, verified_by=how))


# -- challenges ------------------------------------------------------------------------


def outstanding_challenges(conn: Connection, index: int, generation: int, now: float) -> int:
    c = custodian_challenges.c
    return int(conn.execute(select(func.count()).select_from(custodian_challenges).where(and_(
        c.custodian_index == index, c.generation == generation, c.used_at.is_(None),
        c.expires_at > now))).scalar_one())


def insert_challenge(conn: Connection, row: ChallengeRow, now: float) -> None:
    conn.execute(custodian_challenges.insert().values(
        id=row.id, custodian_index=row.custodian_index, generation=row.generation,
        challenge=row.challenge, created_at=now, expires_at=row.expires_at, used_at=None))


def get_challenge(conn: Connection, challenge_id: str) -> ChallengeRow | None:
    c = custodian_challenges.c
    r = conn.execute(select(c.id, c.custodian_index, c.generation, c.challenge, c.expires_at,
                            c.used_at).where(c.id == challenge_id)).first()
    if r is None:
        return None
    return ChallengeRow(r.id, int(r.custodian_index), int(r.generation), bytes(r.challenge),
                        float(r.expires_at), r.used_at)


def consume_challenge(conn: Connection, challenge_id: str, now: float) -> bool:
    """Mark the challenge used; False if it was already used (by any worker or process)."""
    c = custodian_challenges.c
    changed = conn.execute(update(custodian_challenges).where(and_(
        c.id == challenge_id, c.used_at.is_(None))).values(used_at=now)).rowcount
    return bool(changed)


def purge_challenges(conn: Connection, before: float) -> None:
    """Forget challenges that expired before ``before`` (used or not)."""
    conn.execute(delete(custodian_challenges).where(custodian_challenges.c.expires_at < before))
