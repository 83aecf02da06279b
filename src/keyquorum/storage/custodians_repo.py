"""Custodian rows (one per share of a seal generation), their keys and proof challenges."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, and_, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from keyquorum.storage.schema import custodian_challenges, custodian_keys, custodians


@dataclass(frozen=True)
class CustodianRow:
    index: int
    name: str
    issued_at: float | None
    last_verified_at: float | None
    verified_by: str | None
    acknowledged_at: float | None = None
    delivery: str | None = None  # plaintext | encrypted (None: issued before it was recorded)
    recipient: str | None = None  # the key fingerprint an encrypted share was sealed to


@dataclass(frozen=True)
class Delivery:
    """A share sealed to its custodian: the recipient key's fingerprint and the envelope."""

    recipient: str
    envelope: str = field(repr=False)


@dataclass(frozen=True)
class CustodianKeyRow:
    name: str
    algorithm: str
    public_key: str
    fingerprint: str
    registered_at: float
    registered_by: str  # init | rekey | proof


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
    rows = conn.execute(select(c.index, c.name, c.issued_at, c.last_verified_at, c.verified_by,
                               c.acknowledged_at, c.delivery, c.recipient)
                        .where(c.generation == generation).order_by(c.index))
    # ``index`` by position: a Row's ``.index`` is the tuple method.
    return [CustodianRow(int(r[0]), r.name, r.issued_at, r.last_verified_at, r.verified_by,
                         r.acknowledged_at, r.delivery, r.recipient)
            for r in rows]


def insert_custodians(conn: Connection, generation: int, names: tuple[str, ...],
                      issued_at: float | None,
                      deliveries: Mapping[int, Delivery] | None = None) -> None:
    """Rows for every share of ``generation``, none verified yet: handing a share out
    (``issued_at``) is not proof that its custodian received it."""
    sealed = deliveries or {}
    conn.execute(custodians.insert(), [
        {"generation": generation, "index": i, "name": name, "issued_at": issued_at,
         "last_verified_at": None, "verified_by": None, "acknowledged_at": None,
         "delivery": ("encrypted" if i in sealed else "plaintext") if issued_at else None,
         "recipient": sealed[i].recipient if i in sealed else None,
         "envelope": sealed[i].envelope if i in sealed else None}
        for i, name in enumerate(names, start=1)])


def get_envelope(conn: Connection, generation: int, index: int) -> str | None:
    """The sealed share of one custodian of ``generation`` (None: not delivered sealed)."""
    c = custodians.c
    return conn.execute(select(c.envelope).where(and_(
        c.generation == generation, c.index == index))).scalar()


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
    """Possession shown now; the first time is the custodian's acknowledgement."""
    c = custodians.c
    conn.execute(update(custodians).where(and_(c.generation == generation, c.index == index))
                 .values(last_verified_at=now, verified_by=how,
                         acknowledged_at=func.coalesce(c.acknowledged_at, now)))


# -- custodian keys --------------------------------------------------------------------


def get_keys(conn: Connection, names: tuple[str, ...] | None = None
             ) -> dict[str, CustodianKeyRow]:
    """The registered keys by custodian name (every one, or those of ``names``)."""
    k = custodian_keys.c
    query = select(k.name, k.algorithm, k.public_key, k.fingerprint, k.registered_at,
                   k.registered_by)
    if names is not None:
        query = query.where(k.name.in_(names))
    return {r.name: CustodianKeyRow(r.name, r.algorithm, r.public_key, r.fingerprint,
                                    float(r.registered_at), r.registered_by)
            for r in conn.execute(query)}


def put_key(conn: Connection, row: CustodianKeyRow) -> None:
    """Register (or replace) the key of ``row.name``: an update, else an insert."""
    k = custodian_keys.c
    values = {"algorithm": row.algorithm, "public_key": row.public_key,
              "fingerprint": row.fingerprint, "registered_at": row.registered_at,
              "registered_by": row.registered_by}
    if not conn.execute(update(custodian_keys).where(k.name == row.name)
                        .values(**values)).rowcount:
        conn.execute(custodian_keys.insert().values(name=row.name, **values))


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
