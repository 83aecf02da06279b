"""Inventory flags, judged from made-up keys and use (no storage, no server)."""

from __future__ import annotations

from dataclasses import replace

from keyquorum.keys.cryptoperiods import DAY, YEAR
from keyquorum.keys.models import Key, KeyVersion
from keyquorum.keys.states import KeyState, VersionState
from keyquorum.reports.inventory import (
    COMPROMISED_IN_USE,
    DEACTIVATED_IN_USE,
    EXPORTABLE,
    FLAGS,
    NO_OWNER,
    ROTATION_OVERDUE,
    UNUSED,
    AuditCount,
    InventoryEntry,
    KeyUse,
    key_findings,
)

T0 = 1_700_000_000.0


def version(number: int, state: VersionState = VersionState.ACTIVE, *, at: float = T0,
            deactivated_at: float | None = None) -> KeyVersion:
    return KeyVersion(key_id="id", version=number, state=state, created_at=at, activated_at=at,
                      deactivated_at=deactivated_at)


def key(**changes: object) -> Key:
    base = Key(id="id", name="app/k", spec="aes-256-gcm", purpose="encrypt",
               state=KeyState.ENABLED, primary_version=1, min_decrypt_version=1,
               origin="generated", exportable=False, deletion_window_days=30, created_at=T0,
               updated_at=T0, revision=1, owner="team", versions=(version(1),))
    return replace(base, **changes)  # type: ignore[arg-type]


def flags(k: Key, use: KeyUse | None = None, *, now: float = T0 + DAY) -> list[str]:
    return [f.flag for f in key_findings(k, use or KeyUse(last_used_at=now - 1), now)]


def test_a_fresh_owned_used_key_raises_no_flag() -> None:
    assert flags(key()) == []


def test_primary_older_than_the_spec_default_is_rotation_overdue() -> None:
    k = key()
    assert flags(k, now=T0 + 2 * YEAR - DAY) == []
    found = key_findings(k, KeyUse(last_used_at=T0 + 2 * YEAR), T0 + 2 * YEAR + DAY)
    assert [f.flag for f in found] == [ROTATION_OVERDUE]
    assert "Table 1 row 6" in found[0].detail and "730 days" in found[0].detail


def test_the_keys_own_crypto_period_decides_overdue() -> None:
    k = key(crypto_period=30 * DAY)
    assert flags(k, now=T0 + 29 * DAY) == []
    found = key_findings(k, KeyUse(last_used_at=T0 + 31 * DAY), T0 + 31 * DAY)
    assert [f.flag for f in found] == [ROTATION_OVERDUE]
    assert "own crypto_period" in found[0].detail


def test_age_counts_from_the_primary_versions_activation_not_the_keys_creation() -> None:
    rotated = key(primary_version=2, crypto_period=30 * DAY, versions=(
        version(1, VersionState.DEACTIVATED, deactivated_at=T0 + 20 * DAY),
        version(2, at=T0 + 20 * DAY)))
    assert ROTATION_OVERDUE not in flags(rotated, now=T0 + 40 * DAY)
    assert ROTATION_OVERDUE in flags(rotated, now=T0 + 51 * DAY)


def test_a_passed_next_rotation_is_overdue_even_within_the_crypto_period() -> None:
    k = key(rotation_period=7 * DAY, next_rotation=T0 + 7 * DAY)
    assert flags(k, now=T0 + 6 * DAY) == []
    found = key_findings(k, KeyUse(last_used_at=T0 + 8 * DAY), T0 + 8 * DAY)
    assert [f.flag for f in found] == [ROTATION_OVERDUE]
    assert "next rotation was due" in found[0].detail


def test_disabled_and_deleted_keys_are_never_rotation_overdue_or_unused() -> None:
    late = T0 + 3 * YEAR
    for state in (KeyState.DISABLED, KeyState.DESTROY_SCHEDULED, KeyState.DESTROYED):
        assert not {ROTATION_OVERDUE, UNUSED} & set(
            flags(key(state=state), KeyUse(), now=late)), state


def test_unused_for_90_days_counts_from_last_use_or_from_creation() -> None:
    k = key()
    assert UNUSED not in flags(k, KeyUse(), now=T0 + 89 * DAY)  # never used, but young
    assert UNUSED in flags(k, KeyUse(), now=T0 + 90 * DAY)
    assert UNUSED not in flags(k, KeyUse(last_used_at=T0 + 80 * DAY), now=T0 + 169 * DAY)
    assert UNUSED in flags(k, KeyUse(last_used_at=T0 + 80 * DAY), now=T0 + 170 * DAY)


def test_no_owner_counts_blank_owners_but_not_destroyed_tombstones() -> None:
    assert NO_OWNER in flags(key(owner=None))
    assert NO_OWNER in flags(key(owner="   "))
    assert NO_OWNER not in flags(key(owner=None, state=KeyState.DESTROYED))


def test_exportable_is_flagged_until_the_key_is_destroyed() -> None:
    assert EXPORTABLE in flags(key(exportable=True))
    assert EXPORTABLE in flags(key(exportable=True, state=KeyState.DISABLED))
    assert EXPORTABLE not in flags(key(exportable=True, state=KeyState.DESTROYED))


def test_decrypt_attempts_after_revocation_flag_the_compromised_version() -> None:
    k = key(primary_version=2, versions=(
        version(1, VersionState.COMPROMISED, deactivated_at=T0 + DAY), version(2, at=T0 + DAY)))
    quiet = KeyUse(last_used_at=T0, compromised_attempts=(AuditCount(1, T0 + DAY, {}, None),))
    assert COMPROMISED_IN_USE not in flags(k, quiet, now=T0 + 2 * DAY)
    asked = KeyUse(last_used_at=T0, compromised_attempts=(
        AuditCount(1, T0 + DAY, {"error": 2, "ok": 1}, T0 + 2 * DAY),))
    found = {f.flag: f.detail for f in key_findings(k, asked, T0 + 2 * DAY)}
    assert "version 1: 3 decrypt attempt(s)" in found[COMPROMISED_IN_USE]
    assert "2 error" in found[COMPROMISED_IN_USE] and "1 ok" in found[COMPROMISED_IN_USE]


def test_a_deactivated_version_is_in_use_by_audit_record_or_by_last_use() -> None:
    deactivated = T0 + 10 * DAY
    k = key(primary_version=2, versions=(
        version(1, VersionState.DEACTIVATED, deactivated_at=deactivated),
        version(2, at=deactivated)))
    now = deactivated + 5 * DAY
    idle = KeyUse(last_used_at=now, version_last_used={1: deactivated - 1})
    assert DEACTIVATED_IN_USE not in flags(k, idle, now=now)
    by_audit = KeyUse(last_used_at=now, deactivated_uses=(
        AuditCount(1, deactivated, {"ok": 4}, now - 1),))
    assert DEACTIVATED_IN_USE in flags(k, by_audit, now=now)
    by_last_use = KeyUse(last_used_at=now, version_last_used={1: deactivated + DAY})
    assert DEACTIVATED_IN_USE in flags(k, by_last_use, now=now)
    # a use after deactivation but longer than 90 days ago is history, not "still in use"
    assert DEACTIVATED_IN_USE not in flags(k, by_last_use, now=deactivated + 100 * DAY)


def test_findings_come_in_flag_order_and_the_entry_lists_them() -> None:
    k = key(owner=None, exportable=True, crypto_period=DAY)
    use = KeyUse()
    now = T0 + 100 * DAY
    entry = InventoryEntry(k, use, tuple(key_findings(k, use, now)))
    assert entry.flags == [ROTATION_OVERDUE, UNUSED, NO_OWNER, EXPORTABLE]
    assert entry.flags == [f for f in FLAGS if f in entry.flags]
    body = entry.to_json(now)
    assert body["flags"] == entry.flags
    assert body["crypto_period"]["exceeded"] is True
    assert body["crypto_period"]["source"] == "key"
    assert body["primary_age_days"] == 100.0
