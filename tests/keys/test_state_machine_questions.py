"""The questions the lifecycle asks the state machine instead of spelling states itself."""

from __future__ import annotations

import pytest

from keyquorum.errors import KeyStateError
from keyquorum.keys.states import (
    KeyState,
    VersionState,
    affected_by,
    cancel_deletion_state,
    destroy_one_state,
    destroyed_state,
    is_deleted,
    resume_or_refuse,
)

EVERY = {number: state for number, state in enumerate(VersionState, start=1)}


def test_compromise_reaches_deactivated_versions_and_retire_does_not() -> None:
    compromised = {EVERY[n] for n in affected_by("compromise", EVERY)}
    retired = {EVERY[n] for n in affected_by("retire", EVERY)}

    assert VersionState.DEACTIVATED in compromised
    assert VersionState.DEACTIVATED not in retired
    for already_past in (VersionState.COMPROMISED, VersionState.DESTROYED):
        assert already_past not in compromised and already_past not in retired
    assert {VersionState.ACTIVE, VersionState.SUSPENDED, VersionState.PRE_ACTIVE} <= retired


def test_cancelling_a_deletion_returns_the_remembered_state() -> None:
    scheduled = KeyState.DESTROY_SCHEDULED
    assert cancel_deletion_state(scheduled, "enabled") is KeyState.ENABLED
    assert cancel_deletion_state(scheduled, None) is KeyState.DISABLED
    with pytest.raises(KeyStateError, match="not scheduled for deletion"):
        cancel_deletion_state(KeyState.ENABLED, "enabled")
    with pytest.raises(KeyStateError, match="cannot return to destroyed"):
        cancel_deletion_state(scheduled, "destroyed")


def test_only_a_suspended_version_resumes_and_the_primary_becomes_active() -> None:
    assert resume_or_refuse("suspended", version=2, is_primary=True) is VersionState.ACTIVE
    assert resume_or_refuse("suspended", version=1, is_primary=False) \
        is VersionState.DEACTIVATED
    with pytest.raises(KeyStateError, match="version 3 is compromised, not suspended"):
        resume_or_refuse("compromised", version=3, is_primary=True)


def test_destroying_leaves_an_already_destroyed_version_alone() -> None:
    assert destroyed_state(VersionState.DESTROYED) is None
    assert destroyed_state(VersionState.COMPROMISED) is VersionState.DESTROYED
    assert is_deleted("destroy-scheduled") and is_deleted("destroyed")
    assert not is_deleted("disabled")


def test_one_version_is_destroyed_only_below_min_decrypt_version() -> None:
    assert destroy_one_state("deactivated", version=1, min_decrypt_version=2) \
        is VersionState.DESTROYED
    assert destroy_one_state("destroyed", version=1, min_decrypt_version=2) is None
    for version in (2, 3):  # still decrypts (2), or the primary above it (3)
        with pytest.raises(KeyStateError, match="not below the key's min_decrypt_version 2"):
            destroy_one_state("active", version=version, min_decrypt_version=2)
