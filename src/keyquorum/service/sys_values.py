"""Domain values the seal, health and custodian services answer (issue 11's pipeline).

Services return these frozen values; ``api.serialize_sys`` alone turns them into the
JSON of API.md, so the same status can be read by the compliance report, the dev
server or a drill without parsing a wire dict, and the wire shape lives in one place.
Secrets a value may carry (the unseal round's nonce, given to submitters only) are
kept out of ``repr`` so a log line or a traceback never shows them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SealStatus:
    """Whether the service is initialized and sealed, the split, and the unseal progress.

    ``nonce`` is the open unseal round's, set only on the answer to a submitter (it is
    what resetting the round needs); ``None`` when no round is open or for readers.
    """

    initialized: bool
    sealed: bool
    threshold: int | None
    shares: int | None
    progress: int
    seals: tuple[Mapping[str, Any], ...]  # the seal set's public descriptions
    version: str
    nonce: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class CustodianQuorum:
    """How many acknowledged shares were shown within the drill window, beyond the threshold.

    ``unacknowledged`` names the custodians who never showed their share, or (for the
    token-less health answer) only counts them: ``public``.
    """

    threshold: int
    drill_window_days: int
    verified: int
    margin: int
    unacknowledged: tuple[str, ...]
    public: bool = False
    warning: str | None = None


@dataclass(frozen=True)
class AuditHealth:
    """The audit writer and every sink; ``degraded`` when a best-effort sink is failing."""

    running: bool
    backlog: int
    degraded: bool
    sinks: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class ClockHealth:
    """This node's clock against the database's (nodes on PostgreSQL): the last reading
    (``None`` before the scheduler's first tick) and the bound past which it runs no
    scheduled job (``service.clock_skew``)."""

    skew: float | None
    uncertainty: float | None
    bound: float
    within_bound: bool | None  # None: not measured yet


@dataclass(frozen=True)
class Health:
    """What one worker reports about itself (``GET /v1/sys/health``)."""

    initialized: bool
    sealed: bool
    version: str
    node: str
    worker: int
    storage: str
    audit: AuditHealth
    hardening: Mapping[str, Any] | None = None  # what the process achieved at start
    custodians: CustodianQuorum | None = None  # once initialized
    clock: ClockHealth | None = None  # on PostgreSQL only

    @property
    def ready(self) -> bool:
        return self.initialized and not self.sealed


@dataclass(frozen=True)
class Custodian:
    """One share's holder: when it was issued, last shown, and how it was delivered."""

    index: int
    name: str
    issued_at: float | None
    last_verified_at: float | None
    verified_by: str | None  # proof | unseal
    acknowledged_at: float | None
    delivery: str | None  # plaintext | encrypted (None: issued before it was recorded)
    recipient: str | None  # the key fingerprint an encrypted share was sealed to
    key_fingerprint: str | None  # the key registered in the custodian's name now

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None


@dataclass(frozen=True)
class CustodianStatus:
    """Every custodian, the quorum margin, and the commitments to save offline."""

    quorum: CustodianQuorum
    shares: int
    generation: int
    commitments: tuple[str, ...]  # hex Feldman commitments
    custodians: tuple[Custodian, ...]
    seal_fingerprint: str | None = None


@dataclass(frozen=True)
class DeliveredShare:
    """A custodian's share sealed to their key, and what their CLI checks it against.

    The envelope opens only with the custodian's private key; it is still kept out of
    ``repr`` (a share, however wrapped, has no business in a log line).
    """

    custodian: str
    index: int
    generation: int
    delivery: str | None
    recipient: str | None
    envelope: str = field(repr=False)
    key_fingerprint: str | None
    acknowledged_at: float | None
    commitments: tuple[str, ...]
