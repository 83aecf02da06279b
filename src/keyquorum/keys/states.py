"""Key and version states (NIST SP 800-57) and the one state machine every operation asks.

Two levels:

* the **key** is ``enabled``, ``disabled``, ``destroy-scheduled`` or ``destroyed``;
  only an enabled key is used at all;
* each **version** is ``pre-active`` → ``active`` → ``deactivated`` (unprotect
  only), or ``suspended`` (reversible), ``compromised`` (no protection; unprotect
  only with an explicit, audited override), ``destroyed`` (material erased).

Use is split into *protect* (encrypt, sign, mac, datakey: only the primary,
active version) and *unprotect* (decrypt, verify, verify-mac, decapsulate: any
version at or above ``min_decrypt_version`` that is active or deactivated).
"""

from __future__ import annotations

from enum import StrEnum

from keyquorum.errors import KeyStateError


class KeyState(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"
    DESTROY_SCHEDULED = "destroy-scheduled"
    DESTROYED = "destroyed"


class VersionState(StrEnum):
    PRE_ACTIVE = "pre-active"
    ACTIVE = "active"
    DEACTIVATED = "deactivated"
    SUSPENDED = "suspended"
    COMPROMISED = "compromised"
    DESTROY_SCHEDULED = "destroy-scheduled"
    DESTROYED = "destroyed"


class Use(StrEnum):
    PROTECT = "protect"
    UNPROTECT = "unprotect"


# Version transitions by event; anything not listed is refused.
_VERSION_TRANSITIONS: dict[str, dict[VersionState, VersionState]] = {
    "activate": {VersionState.PRE_ACTIVE: VersionState.ACTIVE},
    "deactivate": {VersionState.ACTIVE: VersionState.DEACTIVATED},
    "suspend": {
        VersionState.ACTIVE: VersionState.SUSPENDED,
        VersionState.DEACTIVATED: VersionState.SUSPENDED,
    },
    "compromise": {
        VersionState.PRE_ACTIVE: VersionState.COMPROMISED,
        VersionState.ACTIVE: VersionState.COMPROMISED,
        VersionState.DEACTIVATED: VersionState.COMPROMISED,
        VersionState.SUSPENDED: VersionState.COMPROMISED,
    },
    "retire": {
        VersionState.PRE_ACTIVE: VersionState.DEACTIVATED,
        VersionState.ACTIVE: VersionState.DEACTIVATED,
        VersionState.SUSPENDED: VersionState.DEACTIVATED,
    },
    "destroy": {state: VersionState.DESTROYED for state in VersionState
                if state is not VersionState.DESTROYED},
}

_KEY_TRANSITIONS: dict[str, dict[KeyState, KeyState]] = {
    "disable": {KeyState.ENABLED: KeyState.DISABLED},
    "enable": {KeyState.DISABLED: KeyState.ENABLED},
    "schedule_deletion": {
        KeyState.ENABLED: KeyState.DESTROY_SCHEDULED,
        KeyState.DISABLED: KeyState.DESTROY_SCHEDULED,
    },
    "destroy": {KeyState.DESTROY_SCHEDULED: KeyState.DESTROYED},
}


def next_version_state(current: VersionState | str, event: str) -> VersionState:
    """The state after ``event``, or ``KeyStateError`` if the event is not allowed now."""
    state = VersionState(current)
    target = _VERSION_TRANSITIONS[event].get(state)
    if target is None:
        raise KeyStateError(f"a {state.value} version cannot {event.replace('_', ' ')}")
    return target


def resume_version_state(is_primary: bool) -> VersionState:
    """Where a suspended version returns on enable: primary → active, others → deactivated."""
    return VersionState.ACTIVE if is_primary else VersionState.DEACTIVATED


def next_key_state(current: KeyState | str, event: str) -> KeyState:
    state = KeyState(current)
    target = _KEY_TRANSITIONS[event].get(state)
    if target is None:
        raise KeyStateError(f"a {state.value} key cannot {event.replace('_', ' ')}")
    return target


def check_use(
    *,
    key_state: KeyState | str,
    version_state: VersionState | str,
    use: Use,
    is_primary: bool,
    version: int,
    min_decrypt_version: int,
    allow_compromised: bool = False,
) -> None:
    """Raise ``KeyStateError`` unless this version of this key may be used this way now."""
    # Enum lookups by value are slow; callers on the hot path already pass members.
    if not isinstance(key_state, KeyState):
        key_state = KeyState(key_state)
    if not isinstance(version_state, VersionState):
        version_state = VersionState(version_state)
    if key_state is not KeyState.ENABLED:
        raise KeyStateError(f"the key is {key_state.value}")
    if use is Use.PROTECT:
        if not is_primary or version_state is not VersionState.ACTIVE:
            raise KeyStateError(
                f"version {version} is {version_state.value} and cannot protect new data")
        return
    if version < min_decrypt_version:
        raise KeyStateError(
            f"version {version} is below the key's min_decrypt_version {min_decrypt_version}")
    if version_state in (VersionState.ACTIVE, VersionState.DEACTIVATED):
        return
    if version_state is VersionState.COMPROMISED and allow_compromised:
        return
    if version_state is VersionState.COMPROMISED:
        raise KeyStateError(
            f"version {version} is compromised; unprotecting needs unsafe_allow_compromised")
    raise KeyStateError(f"version {version} is {version_state.value}")


def is_destroyed(state: VersionState | str) -> bool:
    """Whether a version's material is gone (services ask; they never spell the state)."""
    return VersionState(state) is VersionState.DESTROYED


def is_compromised(state: VersionState | str) -> bool:
    """Whether a version was revoked as compromised (unprotecting needs the override)."""
    return VersionState(state) is VersionState.COMPROMISED


# What revoking a whole key moves: every version the event applies to, except that
# retiring leaves already deactivated versions as they are (they already protect nothing);
# compromise reaches deactivated versions too (their old ciphertexts are now suspect).
_REVOKE_SCOPE = {
    "compromise": frozenset(_VERSION_TRANSITIONS["compromise"]),
    "retire": frozenset(_VERSION_TRANSITIONS["retire"]),
}


def affected_by(event: str, states: dict[int, VersionState]) -> list[int]:
    """The version numbers a whole-key ``event`` moves (revoke: compromise or retire)."""
    scope = _REVOKE_SCOPE[event]
    return sorted(number for number, state in states.items() if state in scope)


def resume_or_refuse(current: VersionState | str, *, version: int, is_primary: bool
                     ) -> VersionState:
    """Where ``enable`` takes a version: only a suspended one resumes (primary → active)."""
    state = VersionState(current)
    if state is not VersionState.SUSPENDED:
        raise KeyStateError(f"version {version} is {state.value}, not suspended")
    return resume_version_state(is_primary)


def cancel_deletion_state(current: KeyState | str, remembered: str | None) -> KeyState:
    """The state a key returns to when its scheduled deletion is cancelled: the one it
    had when it was scheduled (disabled if that was not recorded)."""
    state = KeyState(current)
    if state is not KeyState.DESTROY_SCHEDULED:
        raise KeyStateError(f"the key is {state.value}, not scheduled for deletion")
    restored = KeyState(remembered or KeyState.DISABLED.value)
    if restored not in _KEY_TRANSITIONS["schedule_deletion"]:
        raise KeyStateError(f"a key cannot return to {restored.value}")
    return restored


def is_deleted(state: KeyState | str) -> bool:
    """Scheduled for destruction or destroyed: no lifecycle change but cancel applies."""
    return KeyState(state) in (KeyState.DESTROY_SCHEDULED, KeyState.DESTROYED)


def is_active(state: VersionState | str) -> bool:
    """Whether a version protects new data (the primary, unless suspended or revoked)."""
    return VersionState(state) is VersionState.ACTIVE


NEW_KEY_STATE = KeyState.ENABLED
NEW_VERSION_STATE = VersionState.ACTIVE
"""A created key is enabled and its first (and every rotated-in) version active."""


def destroyed_state(current: VersionState | str) -> VersionState | None:
    """Where ``destroy`` takes a version; None when its material is already gone."""
    state = VersionState(current)
    return None if state is VersionState.DESTROYED else next_version_state(state, "destroy")


def destroy_one_state(current: VersionState | str, *, version: int,
                      min_decrypt_version: int) -> VersionState | None:
    """Where destroying one version of a live key takes it (None: already destroyed).

    Only a version below the key's ``min_decrypt_version`` may go: it already
    unprotects nothing (``check_use``) and, the minimum never exceeding the primary,
    it protects nothing either; so erasing its material loses no data that was still
    readable and never leaves the key without its primary.
    """
    if version >= min_decrypt_version:
        raise KeyStateError(
            f"version {version} is not below the key's min_decrypt_version "
            f"{min_decrypt_version}: only versions nothing can decrypt with may be destroyed")
    return destroyed_state(current)
