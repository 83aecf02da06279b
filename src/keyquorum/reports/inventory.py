"""The key inventory: every key, its use, its age against its crypto-period, and its flags.

An auditor's first question is "what keys exist, and which of them need
attention?". The inventory answers from the live system: key metadata and
versions from storage, protect counts and last use from the key cache (the hot
path counts in memory), and what happened to retired versions from the audit
log. Nothing here changes state.

Flags, each with a one-line finding that says why:

``rotation_overdue``
    an enabled key whose primary version is older than its crypto-period
    (``keys/cryptoperiods.py``: NIST SP 800-57 Table 1, or the key's own), or
    whose ``next_rotation`` has passed without a rotation;
``unused_90d``
    an enabled key with no use for 90 days (or, never used, created 90 days ago);
``no_owner``
    nobody is named as accountable for the key;
``exportable``
    the key's material may leave the service;
``compromised_in_use``
    someone asked to decrypt (or re-encrypt) under a version after it was revoked
    as compromised: data is still protected by a key the attacker may hold;
``deactivated_in_use``
    a deactivated version unprotected data in the last 90 days: old ciphertext
    is still around and should be re-encrypted under the primary.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from keyquorum.clock import rfc3339
from keyquorum.keys.cryptoperiods import DAY, EffectiveCryptoPeriod, crypto_period_of
from keyquorum.keys.models import Key, KeyVersion
from keyquorum.keys.states import KeyState, VersionState
from keyquorum.service.core import Core
from keyquorum.storage import keys_repo, reports_repo

UNUSED_AFTER = 90 * DAY
IN_USE_WINDOW = 90 * DAY

ROTATION_OVERDUE = "rotation_overdue"
UNUSED = "unused_90d"
NO_OWNER = "no_owner"
EXPORTABLE = "exportable"
COMPROMISED_IN_USE = "compromised_in_use"
DEACTIVATED_IN_USE = "deactivated_in_use"
FLAGS = (ROTATION_OVERDUE, UNUSED, NO_OWNER, EXPORTABLE, COMPROMISED_IN_USE, DEACTIVATED_IN_USE)

# Audit operations that ask a compromised version to open data (the revoked key's
# ciphertext is still being presented), and those that unprotect with a version.
ASKED_TO_DECRYPT = ("decrypt", "reencrypt")
UNPROTECT = ("decrypt", "reencrypt", "verify", "mac", "decapsulate")

@dataclass(frozen=True)
class AuditCount:
    """Audit records about one version in a window: how many, by outcome, and the latest."""

    version: int
    since: float
    by_outcome: dict[str, int]
    last_at: float | None

    @property
    def total(self) -> int:
        return sum(self.by_outcome.values())

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "since": rfc3339(self.since), "total": self.total,
                "by_outcome": dict(sorted(self.by_outcome.items())),
                "last_at": rfc3339(self.last_at)}


@dataclass(frozen=True)
class KeyUse:
    """What is known about a key's use: the cache's counters and the audit log's records."""

    last_used_at: float | None = None
    version_last_used: dict[int, float] = field(default_factory=dict)
    protect_counts: dict[int, int] = field(default_factory=dict)
    # per version: False when the count is an upper bound (a reservation not given back)
    protect_exact: dict[int, bool] = field(default_factory=dict)
    # compromised versions: decrypt/reencrypt attempts (any outcome) after revocation
    compromised_attempts: tuple[AuditCount, ...] = ()
    # deactivated versions: successful unprotects in the last IN_USE_WINDOW
    deactivated_uses: tuple[AuditCount, ...] = ()


@dataclass(frozen=True)
class Finding:
    flag: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"flag": self.flag, "detail": self.detail}


def primary_activated_at(key: Key) -> float | None:
    primary = key.version(key.primary_version)
    if primary is None:
        return None
    return primary.activated_at or primary.created_at


def _days(seconds: float) -> str:
    return f"{seconds / DAY:.0f} days"


def deactivated_in_use(version: KeyVersion, use: KeyUse, now: float) -> bool:
    """A deactivated version used after it was deactivated, within the window."""
    if version.state is not VersionState.DEACTIVATED:
        return False
    if any(count.version == version.version and count.by_outcome.get("ok", 0)
           for count in use.deactivated_uses):
        return True
    last = use.version_last_used.get(version.version)
    return (last is not None and version.deactivated_at is not None
            and last > version.deactivated_at and last >= now - IN_USE_WINDOW)


def key_findings(key: Key, use: KeyUse, now: float) -> list[Finding]:
    """The flags raised for one key, in ``FLAGS`` order. Pure: all facts come in."""
    findings: list[Finding] = []
    live = key.state is not KeyState.DESTROYED
    enabled = key.state is KeyState.ENABLED
    period = crypto_period_of(key)
    if enabled:
        reasons = []
        activated = primary_activated_at(key)
        if activated is not None and now - activated > period.seconds:
            source = ("the key's own crypto_period" if period.overridden else
                      f"NIST SP 800-57 Table 1 row {period.default.table_row}")
            reasons.append(f"primary version {key.primary_version} is "
                           f"{_days(now - activated)} old; its crypto-period is "
                           f"{_days(period.seconds)} ({source})")
        if key.next_rotation is not None and key.next_rotation <= now:
            reasons.append(f"next rotation was due {rfc3339(key.next_rotation)}")
        if reasons:
            findings.append(Finding(ROTATION_OVERDUE, "; ".join(reasons)))
        reference = use.last_used_at if use.last_used_at is not None else key.created_at
        if now - reference >= UNUSED_AFTER:
            findings.append(Finding(UNUSED, (
                f"last used {rfc3339(use.last_used_at)}" if use.last_used_at is not None
                else f"never used since it was created {rfc3339(key.created_at)}")))
    if live and not (key.owner or "").strip():
        findings.append(Finding(NO_OWNER, "no owner is named for this key"))
    if live and key.exportable:
        findings.append(Finding(EXPORTABLE, "the key's material may be exported"))
    asked = [count for count in use.compromised_attempts if count.total]
    if asked:
        findings.append(Finding(COMPROMISED_IN_USE, "; ".join(
            f"version {count.version}: {count.total} decrypt attempt(s) since it was revoked "
            f"as compromised ({', '.join(f'{n} {o}' for o, n in sorted(count.by_outcome.items()))}"
            f"), the last {rfc3339(count.last_at)}" for count in asked)))
    in_use = [v for v in key.versions if deactivated_in_use(v, use, now)]
    if in_use:
        findings.append(Finding(DEACTIVATED_IN_USE, "; ".join(
            f"version {v.version} (deactivated {rfc3339(v.deactivated_at)}) still unprotects "
            "data: re-encrypt it under the primary" for v in in_use)))
    return findings


@dataclass(frozen=True)
class InventoryEntry:
    key: Key
    use: KeyUse
    findings: tuple[Finding, ...]

    @property
    def flags(self) -> list[str]:
        return [finding.flag for finding in self.findings]

    @property
    def period(self) -> EffectiveCryptoPeriod:
        return crypto_period_of(self.key)

    def to_json(self, now: float) -> dict[str, Any]:
        key, use, period = self.key, self.use, self.period
        activated = primary_activated_at(key)
        ends = activated + period.seconds if activated is not None else None
        return {
            "name": key.name, "id": key.id, "owner": key.owner,
            "description": key.description, "labels": key.labels, "spec": key.spec,
            "purpose": key.purpose, "state": key.state.value, "origin": key.origin,
            "exportable": key.exportable, "created_at": rfc3339(key.created_at),
            "created_by": key.created_by, "primary_version": key.primary_version,
            "primary_activated_at": rfc3339(activated),
            "primary_age_days": None if activated is None else round((now - activated) / DAY, 2),
            "crypto_period": {**period.to_json(), "ends_at": rfc3339(ends),
                              "exceeded": ends is not None and now > ends},
            "rotation_period": key.rotation_period,
            "next_rotation": rfc3339(key.next_rotation),
            "protect_count": sum(use.protect_counts.values()),
            "protect_count_exact": all(use.protect_exact.values()),
            "last_used_at": rfc3339(use.last_used_at),
            "versions": [{
                "version": v.version, "state": v.state.value, "state_reason": v.state_reason,
                "primary": v.version == key.primary_version,
                "created_at": rfc3339(v.created_at), "activated_at": rfc3339(v.activated_at),
                "deactivated_at": rfc3339(v.deactivated_at),
                "destroyed_at": rfc3339(v.destroyed_at),
                "protect_count": use.protect_counts.get(v.version, 0),
                "protect_count_exact": use.protect_exact.get(v.version, True),
                "last_used_at": rfc3339(use.version_last_used.get(v.version)),
            } for v in key.versions],
            "compromised_decrypt_attempts": [c.to_json() for c in use.compromised_attempts],
            "deactivated_uses": [c.to_json() for c in use.deactivated_uses],
            "flags": self.flags,
            "findings": [finding.to_json() for finding in self.findings],
        }


@dataclass(frozen=True)
class Inventory:
    generated_at: float
    entries: tuple[InventoryEntry, ...]

    def summary(self) -> dict[str, Any]:
        flags = Counter(flag for entry in self.entries for flag in entry.flags)
        return {
            "keys": len(self.entries),
            "by_state": dict(sorted(Counter(e.key.state.value for e in self.entries).items())),
            "by_spec": dict(sorted(Counter(e.key.spec for e in self.entries).items())),
            "flags": {flag: flags.get(flag, 0) for flag in FLAGS},
            # "upper_bound": some protect count includes blocks reserved by another worker
            # or never given back after a crash; such counts may be high, never low.
            "protect_counts": ("exact" if all(all(e.use.protect_exact.values())
                                              for e in self.entries) else "upper_bound"),
        }

    def to_json(self) -> dict[str, Any]:
        return {"generated_at": rfc3339(self.generated_at), "summary": self.summary(),
                "keys": [entry.to_json(self.generated_at) for entry in self.entries]}


def _audit_count(conn: Connection, key: Key, version: int, operations: tuple[str, ...],
                 since: float, *, outcome: str | None = None) -> AuditCount:
    counts = reports_repo.audit_outcomes(conn, key=key.name, version=version,
                                         operations=operations, since=since, outcome=outcome)
    return AuditCount(version, since, counts.by_outcome, counts.last_at)


def key_use(core: Core, conn: Connection, key: Key, now: float,
            held: dict[tuple[str, int], int] | None = None) -> KeyUse:
    """The cache's counters and the audit records about this key's retired versions.

    Only compromised and deactivated versions are looked up in the audit log, each
    by key name (indexed) and version, so the cost grows with retired versions, not
    with traffic on the primary.
    """
    last_used, per_version = core.keys.last_used(key)
    compromised: list[AuditCount] = []
    deactivated: list[AuditCount] = []
    for version in key.versions:
        if version.state is VersionState.COMPROMISED:
            since = version.deactivated_at or version.created_at
            compromised.append(_audit_count(conn, key, version.version, ASKED_TO_DECRYPT,
                                            since))
        elif version.state is VersionState.DEACTIVATED:
            since = max(version.deactivated_at or version.created_at, now - IN_USE_WINDOW)
            deactivated.append(_audit_count(conn, key, version.version, UNPROTECT, since,
                                            outcome="ok"))
    return KeyUse(
        last_used_at=last_used, version_last_used=dict(per_version),
        protect_counts={v.version: core.keys.protect_count(key, v.version)
                        for v in key.versions},
        protect_exact=core.keys.counts_exact(
            key, keys_repo.reservation_holders(conn) if held is None else held),
        compromised_attempts=tuple(compromised), deactivated_uses=tuple(deactivated))


def build_inventory(core: Core) -> Inventory:
    """Every key (destroyed ones too, as tombstones), with its use and flags, now."""
    core.barrier()  # the cache's counters are only meaningful while unsealed
    now = core.clock.now()
    entries: list[InventoryEntry] = []
    with core.engine.connect() as conn:
        held = keys_repo.reservation_holders(conn)
        for key in keys_repo.iter_keys(conn):
            use = key_use(core, conn, key, now, held)
            entries.append(InventoryEntry(key, use, tuple(key_findings(key, use, now))))
    return Inventory(now, tuple(entries))
