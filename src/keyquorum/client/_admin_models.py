"""What the token, policy and audit operations answer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._models import _int_or_none, parse_time

# --- identity, policy, audit ------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """A newly created token. ``token`` is the secret; ``accessor`` names it safely."""

    token: str = field(repr=False)
    accessor: str
    expires_at: datetime | None = None
    policies: tuple[str, ...] = ()
    orphan: bool = False
    """Not revoked with the token that made it (``create_token(..., orphan=True)``)."""

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Token:
        return cls(token=str(body["token"]), accessor=str(body["accessor"]),
                   expires_at=parse_time(body.get("expires_at")),
                   policies=tuple(body.get("policies") or ()),
                   orphan=body.get("orphan") is True)


@dataclass(frozen=True)
class TokenInfo:
    """What the server knows about the calling token (never the token itself)."""

    accessor: str
    name: str | None = None
    policies: tuple[str, ...] = ()
    expires_at: datetime | None = None
    created_at: datetime | None = None
    orphan: bool = False
    """Revoking the token that made it leaves this one (init's root token is one too)."""

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> TokenInfo:
        return cls(accessor=str(body.get("accessor", "")), name=body.get("name"),
                   policies=tuple(body.get("policies") or ()),
                   expires_at=parse_time(body.get("expires_at")),
                   created_at=parse_time(body.get("created_at")),
                   orphan=body.get("orphan") is True)


@dataclass(frozen=True)
class RevokedCredential:
    """A token or access key a revocation took along (or would, in a dry run)."""

    accessor: str
    kind: str  # "token" or "access_key"
    name: str | None = None
    policies: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> RevokedCredential:
        return cls(accessor=str(body.get("accessor", "")), kind=str(body.get("kind", "")),
                   name=body.get("name"), policies=tuple(body.get("policies") or ()))


@dataclass(frozen=True)
class TokenRevocation:
    """What ``revoke_token`` did: the token, and every credential it minted, directly or
    through them (orphans excepted). With ``dry_run`` nothing was revoked: the lists
    are what the revocation would take along."""

    accessor: str
    revoked: bool
    dry_run: bool = False
    also_revoked: tuple[str, ...] = ()
    also_revoked_details: tuple[RevokedCredential, ...] = ()

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> TokenRevocation:
        return cls(accessor=str(body.get("accessor", "")), revoked=body.get("revoked") is True,
                   dry_run=body.get("dry_run") is True,
                   also_revoked=tuple(str(a) for a in body.get("also_revoked") or ()),
                   also_revoked_details=tuple(RevokedCredential.from_json(d) for d
                                              in body.get("also_revoked_details") or ()))


@dataclass(frozen=True)
class PolicyRule:
    """One rule; ``conditions`` (optional) is ``{specs?, context_keys?, source?}``."""

    keys: str
    operations: tuple[str, ...]
    effect: str = "allow"
    conditions: Mapping[str, Any] | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> PolicyRule:
        conditions = body.get("conditions")
        return cls(keys=str(body.get("keys", "")),
                   operations=tuple(body.get("operations") or ()),
                   effect=str(body.get("effect") or "allow"),
                   conditions=dict(conditions) if isinstance(conditions, Mapping) else None)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"keys": self.keys, "operations": list(self.operations),
                               "effect": self.effect}
        if self.conditions is not None:
            out["conditions"] = dict(self.conditions)
        return out


@dataclass(frozen=True)
class Policy:
    name: str
    rules: tuple[PolicyRule, ...]
    builtin: bool = False
    description: str | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any], name: str | None = None) -> Policy:
        return cls(name=str(body.get("name") or name or ""),
                   rules=tuple(PolicyRule.from_json(r) for r in body.get("rules") or ()),
                   builtin=bool(body.get("builtin", False)),
                   description=body.get("description"))


@dataclass(frozen=True)
class DecidingRule:
    """A rule named in a policy decision: which policy, which line (0-based), what it says."""

    policy: str
    index: int
    rule: PolicyRule
    failed: tuple[str, ...] = ()  # for an unmet rule: the conditions that did not hold

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> DecidingRule:
        return cls(policy=str(body.get("policy", "")), index=int(body.get("index") or 0),
                   rule=PolicyRule.from_json(body), failed=tuple(body.get("failed") or ()))

    def to_json(self) -> dict[str, Any]:
        """The server's form: the rule's fields with ``policy`` and ``index`` beside them."""
        out = {"policy": self.policy, "index": self.index, **self.rule.to_json()}
        if self.failed:
            out["failed"] = list(self.failed)
        return out


@dataclass(frozen=True)
class PolicyDecision:
    """The answer of ``simulate_policy``: allowed or not, and the rule that explains it
    (``None`` when denied by default; ``unmet`` then lists allow rules whose
    conditions did not hold)."""

    allowed: bool
    rule: DecidingRule | None
    unmet: tuple[DecidingRule, ...] = ()
    policies: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> PolicyDecision:
        rule = body.get("rule")
        return cls(allowed=bool(body.get("allowed")),
                   rule=DecidingRule.from_json(rule) if isinstance(rule, Mapping) else None,
                   unmet=tuple(DecidingRule.from_json(u) for u in body.get("unmet") or ()),
                   policies=tuple(body.get("policies") or ()))

    def to_json(self) -> dict[str, Any]:
        """The answer as the server sent it (``keyquorum policy explain --json``)."""
        return {"allowed": self.allowed,
                "rule": self.rule.to_json() if self.rule is not None else None,
                "unmet": [u.to_json() for u in self.unmet], "policies": list(self.policies)}


@dataclass(frozen=True)
class AuditRecord:
    id: str
    time: datetime | None
    operation: str
    outcome: str
    request_id: str | None = None
    identity: str | None = None
    key: str | None = None
    key_version: int | None = None
    error_code: str | None = None
    client: str | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> AuditRecord:
        return cls(id=str(body.get("id", "")), time=parse_time(body.get("time")),
                   operation=str(body.get("operation", "")), outcome=str(body.get("outcome", "")),
                   request_id=body.get("request_id"), identity=body.get("identity"),
                   key=body.get("key"), key_version=_int_or_none(body.get("key_version")),
                   error_code=body.get("error_code"), client=body.get("client"))


@dataclass(frozen=True)
class AuditPage:
    records: tuple[AuditRecord, ...]
    next_page_token: str | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> AuditPage:
        return cls(records=tuple(AuditRecord.from_json(r) for r in body.get("records") or ()),
                   next_page_token=body.get("next_page_token") or None)


@dataclass(frozen=True)
class AuditVerification:
    """The answer of ``POST /v1/audit/verify``: ``first_bad`` is ``{id, reason}`` when broken."""

    ok: bool
    records: int
    first_bad: dict[str, Any] | None = None
    head: dict[str, Any] | None = None
    checkpoints: int = 0
    last_checkpoint: int | None = None
    unsigned_tail: int = 0

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> AuditVerification:
        return cls(ok=bool(body.get("ok")), records=int(body.get("records") or 0),
                   first_bad=body.get("first_bad"), head=body.get("head"),
                   checkpoints=int(body.get("checkpoints") or 0),
                   last_checkpoint=body.get("last_checkpoint"),
                   unsigned_tail=int(body.get("unsigned_tail") or 0))


def rules_to_json(rules: Sequence[PolicyRule | Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [r.to_json() if isinstance(r, PolicyRule) else dict(r) for r in rules]
