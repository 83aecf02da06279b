"""The state machine every operation asks: transitions and use checks."""

from __future__ import annotations

import pytest

from keyquorum.errors import KeyStateError
from keyquorum.keys.states import (
    KeyState,
    Use,
    VersionState,
    check_use,
    next_key_state,
    next_version_state,
    resume_version_state,
)


def use(**overrides: object) -> None:
    args: dict[str, object] = dict(key_state="enabled", version_state="active",
                                   use=Use.PROTECT, is_primary=True, version=1,
                                   min_decrypt_version=1)
    args.update(overrides)
    check_use(**args)  # type: ignore[arg-type]


def test_primary_active_version_protects_and_unprotects() -> None:
    use()
    use(use=Use.UNPROTECT)


@pytest.mark.parametrize("key_state", ["disabled", "destroy-scheduled", "destroyed"])
def test_a_key_that_is_not_enabled_is_not_used_at_all(key_state: str) -> None:
    with pytest.raises(KeyStateError, match=key_state):
        use(key_state=key_state)
    with pytest.raises(KeyStateError):
        use(key_state=key_state, use=Use.UNPROTECT)


def test_only_the_primary_version_protects() -> None:
    with pytest.raises(KeyStateError, match="cannot protect"):
        use(is_primary=False)
    with pytest.raises(KeyStateError, match="cannot protect"):
        use(version_state="deactivated")


def test_deactivated_versions_still_unprotect() -> None:
    use(version_state="deactivated", is_primary=False, use=Use.UNPROTECT)


@pytest.mark.parametrize("state", ["suspended", "destroyed", "pre-active", "destroy-scheduled"])
def test_unusable_versions_refuse_unprotect(state: str) -> None:
    with pytest.raises(KeyStateError, match=state):
        use(version_state=state, use=Use.UNPROTECT)


def test_compromised_needs_the_explicit_override() -> None:
    with pytest.raises(KeyStateError, match="unsafe_allow_compromised"):
        use(version_state="compromised", use=Use.UNPROTECT)
    use(version_state="compromised", use=Use.UNPROTECT, allow_compromised=True)
    with pytest.raises(KeyStateError):  # the override never allows new protection
        use(version_state="compromised", allow_compromised=True)


def test_min_decrypt_version_refuses_older_versions() -> None:
    with pytest.raises(KeyStateError, match="min_decrypt_version"):
        use(version=1, min_decrypt_version=2, use=Use.UNPROTECT, version_state="deactivated")


def test_version_transitions() -> None:
    assert next_version_state("active", "deactivate") is VersionState.DEACTIVATED
    assert next_version_state("deactivated", "compromise") is VersionState.COMPROMISED
    assert next_version_state("active", "suspend") is VersionState.SUSPENDED
    assert next_version_state("compromised", "destroy") is VersionState.DESTROYED
    with pytest.raises(KeyStateError):
        next_version_state("destroyed", "destroy")
    with pytest.raises(KeyStateError):
        next_version_state("compromised", "suspend")
    assert resume_version_state(True) is VersionState.ACTIVE
    assert resume_version_state(False) is VersionState.DEACTIVATED


def test_key_transitions() -> None:
    assert next_key_state("enabled", "disable") is KeyState.DISABLED
    assert next_key_state("disabled", "schedule_deletion") is KeyState.DESTROY_SCHEDULED
    assert next_key_state("destroy-scheduled", "destroy") is KeyState.DESTROYED
    with pytest.raises(KeyStateError):
        next_key_state("enabled", "destroy")  # destruction only after the waiting period
    with pytest.raises(KeyStateError):
        next_key_state("destroyed", "enable")
