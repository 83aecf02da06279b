"""Dual control settings: strict parsing, what counts as weakening, the config-file floor."""

from __future__ import annotations

import pytest

from keyquorum.auth.dual_settings import (
    ACTIONS,
    DEFAULT_TTL,
    DUAL_CONTROL_CHANGE,
    OFF,
    DualControlSettings,
    parse_settings,
    strictest,
)
from keyquorum.errors import InvalidRequest


def test_off_by_default_and_guards_nothing() -> None:
    assert not OFF.on
    assert not any(OFF.guards(action) for action in (*ACTIONS, DUAL_CONTROL_CHANGE))


def test_on_guards_the_default_set_and_its_own_weakening() -> None:
    settings = parse_settings({"approvals": 2})
    assert settings == DualControlSettings(2, ACTIONS, DEFAULT_TTL)
    assert {"schedule-deletion", "destroy-versions", "revoke", "export", "import",
            "policy-put", "policy-delete", "audit-sink-remove", "seal-change",
            "token-create-privileged"} == ACTIONS
    assert all(settings.guards(action) for action in ACTIONS)
    assert settings.guards(DUAL_CONTROL_CHANGE)
    assert not settings.guards("rotate")


def test_a_listed_subset_guards_only_those() -> None:
    settings = parse_settings({"approvals": 1, "operations": ["revoke"], "ttl": "2h"})
    assert settings.operations == {"revoke"} and settings.ttl == 7200
    assert settings.guards("revoke") and not settings.guards("policy-put")


@pytest.mark.parametrize("raw", [
    None, [], {"approvals": -1}, {"approvals": 17}, {"approvals": True}, {"approvals": "2"},
    {}, {"approvals": 2, "operations": []}, {"approvals": 2, "operations": ["rotate"]},
    {"approvals": 2, "operations": "revoke"}, {"approvals": 2, "ttl": "10s"},
    {"approvals": 2, "ttl": "31d"}, {"approvals": 2, "ttl": "soon"},
    {"approvals": 2, "approvers": ["x"]},
])
def test_bad_settings_are_refused_with_the_rule(raw: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_settings(raw)
    assert caught.value.message.startswith("dual_control")


def test_weakening_is_fewer_approvals_a_removed_action_a_longer_ttl_or_off() -> None:
    current = DualControlSettings(2, frozenset({"revoke", "policy-put"}), 3600)
    assert OFF.weaker_than(current)
    assert DualControlSettings(1, current.operations, 3600).weaker_than(current)
    assert DualControlSettings(2, frozenset({"revoke"}), 3600).weaker_than(current)
    assert DualControlSettings(2, current.operations, 7200).weaker_than(current)
    assert not DualControlSettings(3, ACTIONS, 600).weaker_than(current)
    assert not current.weaker_than(current)
    assert not OFF.weaker_than(OFF)  # nothing to weaken while off


def test_strictest_keeps_the_most_protection_of_both() -> None:
    floor = DualControlSettings(2, frozenset({"revoke"}), 3600)
    stored = DualControlSettings(3, frozenset({"policy-put"}), 7200)
    assert strictest(floor, stored) == DualControlSettings(
        3, frozenset({"revoke", "policy-put"}), 3600)
    assert strictest(OFF, stored) == stored
    assert strictest(floor, OFF) == floor
