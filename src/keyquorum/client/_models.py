"""Typed, immutable answers of the keyquorum API.

Binary values travel as standard base64 in JSON; here they are ``bytes``.
Fields holding secrets (plaintext, shares, tokens, shared secrets, random bytes)
are left out of ``repr`` so they never land in a log by accident.
Parsing is lenient about fields it does not know, so a newer server still works.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
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
    # Answered to share submitters while a round is open: unseal_reset needs it.
    nonce: str | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> SealStatus:
        return cls(initialized=bool(body.get("initialized")), sealed=bool(body.get("sealed")),
                   threshold=_int_or_none(body.get("threshold")),
                   shares=_int_or_none(body.get("shares")),
                   progress=int(body.get("progress") or 0),
                   seals=tuple(body.get("seals") or ()), nonce=body.get("nonce"))


@dataclass(frozen=True)
class EncryptedShare:
    """A new share sealed to its custodian's public key (``kqse1:...``): safe to pass on;
    only the custodian's private key opens it (``keyquorum custodian decrypt-share``)."""

    custodian: str
    index: int
    recipient: str  # the fingerprint of the key it is sealed to
    envelope: str

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> EncryptedShare:
        return cls(custodian=str(body["custodian"]), index=int(body["index"]),
                   recipient=str(body["recipient"]), envelope=str(body["envelope"]))


def encrypted_shares(body: Mapping[str, Any]) -> tuple[EncryptedShare, ...]:
    return tuple(EncryptedShare.from_json(e) for e in body.get("encrypted_shares") or ())


@dataclass(frozen=True)
class InitResult:
    """The one-time answer of init: unseal shares and the root token (both secret).

    With custodian keys given, ``shares`` is empty and ``encrypted_shares`` holds each
    share sealed to its custodian (``delivery`` says which).
    """

    shares: tuple[str, ...] = field(repr=False)
    root_token: str = field(repr=False)
    commitments: tuple[str, ...] = ()
    threshold: int | None = None
    custodians: tuple[str, ...] = ()
    seal_fingerprint: str | None = None  # what restore and drill pin backups to (--expect)
    delivery: str = "plaintext"  # plaintext | encrypted
    encrypted_shares: tuple[EncryptedShare, ...] = ()

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> InitResult:
        return cls(shares=tuple(body.get("shares") or ()), root_token=str(body["root_token"]),
                   commitments=tuple(body.get("commitments") or ()),
                   threshold=_int_or_none(body.get("threshold")),
                   custodians=tuple(body.get("custodians") or ()),
                   seal_fingerprint=body.get("seal_fingerprint"),
                   delivery=str(body.get("delivery") or "plaintext"),
                   encrypted_shares=encrypted_shares(body))


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
