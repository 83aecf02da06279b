"""Typed, immutable answers of the keyquorum API.

Binary values travel as standard base64 in JSON; here they are ``bytes``.
Fields holding secrets (plaintext, shares, tokens, shared secrets, random bytes)
are left out of ``repr`` so they never land in a log by accident.
Parsing is lenient about fields it does not know, so a newer server still works.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import KeyquorumAPIError


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyquorumAPIError("the server sent a value that is not valid base64",
                                code="unexpected_answer") from exc


def _b64_or_none(value: Any) -> bytes | None:
    return None if value is None else b64decode(str(value))


def parse_time(value: Any) -> datetime | None:
    """Read an RFC 3339 time; ``None`` stays ``None``."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value).astimezone()
    return datetime.fromisoformat(str(value))


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


# --- system -----------------------------------------------------------------


@dataclass(frozen=True)
class Health:
    initialized: bool
    sealed: bool
    version: str | None = None
    node: str | None = None
    storage: Any = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Health:
        return cls(initialized=bool(body.get("initialized")), sealed=bool(body.get("sealed")),
                   version=body.get("version"), node=body.get("node"),
                   storage=body.get("storage"))


@dataclass(frozen=True)
class SealStatus:
    initialized: bool
    sealed: bool
    threshold: int | None = None
    shares: int | None = None
    progress: int = 0
    seals: tuple[Any, ...] = ()

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> SealStatus:
        return cls(initialized=bool(body.get("initialized")), sealed=bool(body.get("sealed")),
                   threshold=_int_or_none(body.get("threshold")),
                   shares=_int_or_none(body.get("shares")),
                   progress=int(body.get("progress") or 0),
                   seals=tuple(body.get("seals") or ()))


@dataclass(frozen=True)
class InitResult:
    """The one-time answer of init: unseal shares and the root token (both secret)."""

    shares: tuple[str, ...] = field(repr=False)
    root_token: str = field(repr=False)
    commitments: tuple[str, ...] = ()
    threshold: int | None = None
    custodians: tuple[str, ...] = ()
    seal_fingerprint: str | None = None  # what restore and drill pin backups to (--expect)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> InitResult:
        return cls(shares=tuple(body.get("shares") or ()), root_token=str(body["root_token"]),
                   commitments=tuple(body.get("commitments") or ()),
                   threshold=_int_or_none(body.get("threshold")),
                   custodians=tuple(body.get("custodians") or ()),
                   seal_fingerprint=body.get("seal_fingerprint"))


@dataclass(frozen=True)
class Seal:
    """One seal of the seal set: type, id, public parameters, the last automatic attempt.

    ``params`` never hold a secret (a PIN or passphrase is never stored, only where
    to find it); ``last_attempt`` is ``{ok, at, reason?, message?}`` for PKCS#11 and
    KMS seals once the server has tried them.
    """

    type: str
    id: str
    automatic: bool = False
    params: Mapping[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    last_attempt: Mapping[str, Any] | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Seal:
        params = body.get("params")
        if params is None:  # Shamir: its shape is the split
            params = {k: body[k] for k in ("shares", "threshold") if k in body}
        return cls(type=str(body.get("type")), id=str(body.get("id") or body.get("type")),
                   automatic=bool(body.get("automatic")), params=dict(params),
                   created_at=parse_time(body.get("created_at")),
                   last_attempt=body.get("last_attempt"))


@dataclass(frozen=True)
class Custodian:
    index: int
    name: str | None
    last_verified: datetime | None
    quorum_margin: int | None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Custodian:
        return cls(index=int(body.get("index") or 0), name=body.get("name"),
                   last_verified=parse_time(body.get("last_verified")
                                            or body.get("last_verified_at")),
                   quorum_margin=_int_or_none(body.get("quorum_margin")))


@dataclass(frozen=True)
class CustodianProof:
    valid: bool
    verified_at: datetime | None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> CustodianProof:
        return cls(valid=bool(body.get("valid")), verified_at=parse_time(body.get("verified_at")))


# --- keys -------------------------------------------------------------------


@dataclass(frozen=True)
class KeyVersion:
    version: int
    state: str
    created_at: datetime | None = None
    protect_count: int = 0
    last_used_at: datetime | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> KeyVersion:
        return cls(version=int(body["version"]), state=str(body.get("state", "")),
                   created_at=parse_time(body.get("created_at")),
                   protect_count=int(body.get("protect_count") or 0),
                   last_used_at=parse_time(body.get("last_used_at")))


@dataclass(frozen=True)
class Key:
    """A managed key and its versions (metadata only: never any material)."""

    name: str
    spec: str
    purpose: str
    state: str
    primary_version: int | None
    id: str | None = None
    min_decrypt_version: int | None = None
    owner: str | None = None
    description: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    origin: str | None = None
    exportable: bool = False
    rotation_period: int | str | None = None
    next_rotation: datetime | None = None
    crypto_period: int | None = None  # seconds; None: the spec's NIST SP 800-57 default
    usage_limit: int | None = None
    deletion_window_days: int | None = None
    destroy_at: datetime | None = None
    created_at: datetime | None = None
    created_by: str | None = None
    last_used_at: datetime | None = None
    versions: tuple[KeyVersion, ...] = ()

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Key:
        return cls(
            name=str(body["name"]), spec=str(body.get("spec", "")),
            purpose=str(body.get("purpose", "")), state=str(body.get("state", "")),
            primary_version=_int_or_none(body.get("primary_version")),
            id=body.get("id"), min_decrypt_version=_int_or_none(body.get("min_decrypt_version")),
            owner=body.get("owner"), description=body.get("description"),
            labels=dict(body.get("labels") or {}), origin=body.get("origin"),
            exportable=bool(body.get("exportable")), rotation_period=body.get("rotation_period"),
            next_rotation=parse_time(body.get("next_rotation")),
            crypto_period=_int_or_none(body.get("crypto_period")),
            usage_limit=_int_or_none(body.get("usage_limit")),
            deletion_window_days=_int_or_none(body.get("deletion_window_days")),
            destroy_at=parse_time(body.get("destroy_at")),
            created_at=parse_time(body.get("created_at")), created_by=body.get("created_by"),
            last_used_at=parse_time(body.get("last_used_at")),
            versions=tuple(KeyVersion.from_json(v) for v in body.get("versions") or ()),
        )


@dataclass(frozen=True)
class KeyPage:
    keys: tuple[Key, ...]
    next_page_token: str | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> KeyPage:
        return cls(keys=tuple(Key.from_json(k) for k in body.get("keys") or ()),
                   next_page_token=body.get("next_page_token") or None)


@dataclass(frozen=True)
class DeletionScheduled:
    destroy_at: datetime | None
    name: str | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> DeletionScheduled:
        return cls(destroy_at=parse_time(body.get("destroy_at")), name=body.get("name"))


@dataclass(frozen=True)
class PublicKey:
    public_key_pem: str
    version: int

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> PublicKey:
        return cls(public_key_pem=str(body["public_key_pem"]), version=int(body["version"]))


# --- cryptographic operations -------------------------------------------------


@dataclass(frozen=True)
class EncryptResult:
    """A ciphertext (text, ``kq1:...``) and the key version that made it."""

    ciphertext: str
    key_version: int | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> EncryptResult:
        return cls(ciphertext=str(body["ciphertext"]),
                   key_version=_int_or_none(body.get("key_version")))


@dataclass(frozen=True)
class DecryptResult:
    plaintext: bytes = field(repr=False)
    key: str | None = None
    key_version: int | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> DecryptResult:
        return cls(plaintext=b64decode(str(body["plaintext"])), key=body.get("key"),
                   key_version=_int_or_none(body.get("key_version")))


@dataclass(frozen=True)
class DataKey:
    """A data key wrapped under a managed key; ``plaintext`` only when asked for."""

    ciphertext: str
    plaintext: bytes | None = field(default=None, repr=False)
    key_version: int | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> DataKey:
        return cls(ciphertext=str(body["ciphertext"]),
                   plaintext=_b64_or_none(body.get("plaintext")),
                   key_version=_int_or_none(body.get("key_version")))


@dataclass(frozen=True)
class Signature:
    signature: bytes
    key_version: int | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Signature:
        return cls(signature=b64decode(str(body["signature"])),
                   key_version=_int_or_none(body.get("key_version")))


@dataclass(frozen=True)
class Verification:
    """The answer of verify and verify-mac."""

    valid: bool
    key_version: int | None = None

    def __bool__(self) -> bool:
        return self.valid

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Verification:
        return cls(valid=bool(body.get("valid")), key_version=_int_or_none(body.get("key_version")))


@dataclass(frozen=True)
class Mac:
    mac: bytes
    key_version: int | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Mac:
        return cls(mac=b64decode(str(body["mac"])),
                   key_version=_int_or_none(body.get("key_version")))


@dataclass(frozen=True)
class SharedSecret:
    shared_secret: bytes = field(repr=False)
    key_version: int | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> SharedSecret:
        return cls(shared_secret=b64decode(str(body["shared_secret"])),
                   key_version=_int_or_none(body.get("key_version")))


# Batch items: what to send for one item of a ``*_batch`` call.


@dataclass(frozen=True)
class EncryptItem:
    plaintext: bytes = field(repr=False)
    context: Mapping[str, str] | None = None


@dataclass(frozen=True)
class DecryptItem:
    ciphertext: str
    context: Mapping[str, str] | None = None


@dataclass(frozen=True)
class ReencryptItem:
    ciphertext: str
    context: Mapping[str, str] | None = None
    destination_key: str | None = None
    destination_context: Mapping[str, str] | None = None


@dataclass(frozen=True)
class DataKeyItem:
    bits: int | None = None
    context: Mapping[str, str] | None = None
    plaintext: bool = True


@dataclass(frozen=True)
class SignItem:
    """Sign a ``message``, or a precomputed ``digest`` made with ``hash``."""

    message: bytes | None = None
    digest: bytes | None = None
    hash: str | None = None


@dataclass(frozen=True)
class VerifyItem:
    signature: bytes
    message: bytes | None = None
    digest: bytes | None = None
    hash: str | None = None
    key_version: int | None = None


@dataclass(frozen=True)
class VerifyMacItem:
    message: bytes
    mac: bytes
    key_version: int | None = None


@dataclass(frozen=True)
class DecapsulateItem:
    encapsulation: bytes
    key_version: int | None = None
    context: Mapping[str, str] | None = None


# --- identity, policy, audit ------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """A newly created token. ``token`` is the secret; ``accessor`` names it safely."""

    token: str = field(repr=False)
    accessor: str
    expires_at: datetime | None = None
    policies: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Token:
        return cls(token=str(body["token"]), accessor=str(body["accessor"]),
                   expires_at=parse_time(body.get("expires_at")),
                   policies=tuple(body.get("policies") or ()))


@dataclass(frozen=True)
class TokenInfo:
    """What the server knows about the calling token (never the token itself)."""

    accessor: str
    name: str | None = None
    policies: tuple[str, ...] = ()
    expires_at: datetime | None = None
    created_at: datetime | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> TokenInfo:
        return cls(accessor=str(body.get("accessor", "")), name=body.get("name"),
                   policies=tuple(body.get("policies") or ()),
                   expires_at=parse_time(body.get("expires_at")),
                   created_at=parse_time(body.get("created_at")))


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
