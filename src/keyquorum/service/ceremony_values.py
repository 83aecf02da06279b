"""Domain values the custodian ceremonies answer: rekey, seal addition, generate-root.

Each ceremony is in one of four stages (nothing open, collecting shares, just
completed, just cancelled) and reports how many shares it has of how many it needs;
that much they share (``CeremonyProgress``). What each collects shares *for* differs,
so each adds its own fields. ``api.serialize_ceremonies`` turns them into API.md's
JSON. The nonce (given only to submitters), an encoded root token and sealed shares
are kept out of ``repr``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from keyquorum.seal.shamir import ShamirSealConfig
    from keyquorum.service.rekey import RekeyPlan

Stage = Literal["idle", "collecting", "complete", "cancelled"]


@dataclass(frozen=True)
class CeremonyProgress:
    """Where a share-collecting ceremony stands.

    ``generation`` is the seal generation whose shares are collected (``None`` where a
    ceremony does not report it); ``started_*``/``expires_at`` and ``submitted`` are
    set while collecting.
    """

    stage: Stage
    progress: int
    required: int
    generation: int | None = None
    submitted: tuple[int, ...] = ()
    started_by: str | None = None
    started_at: float | None = None
    expires_at: float | None = None
    nonce: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class SealAddStatus(CeremonyProgress):
    """A proposed seal waiting for custodians; ``seal`` is its public description."""

    seal: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class RekeyStatus(CeremonyProgress):
    """A rekey: its plan while collecting; the new split and sealed shares once complete."""

    plan: RekeyPlan | None = None
    new_config: ShamirSealConfig | None = None  # complete: the new seal
    encrypted_shares: tuple[Mapping[str, object], ...] = field(default=(), repr=False)
    seal_fingerprint: str | None = None


@dataclass(frozen=True)
class GenerateRootStatus(CeremonyProgress):
    """Break glass: an attempt to mint a root token sealed to the requester's key.

    ``token_expires_at`` is the minted token's expiry (complete only); the attempt's
    own is ``expires_at``. The ``encoded_token`` is the new token sealed to the
    requester's public key: still a secret's envelope, never in a ``repr``.
    """

    attempt: str | None = None
    opened_by: str | None = None
    public_key_fingerprint: str | None = None
    token_ttl: float | None = None
    accessor: str | None = None
    token_expires_at: float | None = None
    encoded_token: str | None = field(default=None, repr=False)
