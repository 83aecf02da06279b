"""Built-in roles: every role against every operation, and their read-only place in the store."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import Engine, insert

from keyquorum.auth.authorizer import Authorizer
from keyquorum.auth.identity import Identity
from keyquorum.auth.operations import OPERATIONS
from keyquorum.auth.policy_store import PolicyStore, parse_policy
from keyquorum.auth.roles import BUILTIN_ROLES, ROLES
from keyquorum.auth.rules import Policy, Rule
from keyquorum.errors import Conflict
from keyquorum.storage.schema import policies

# Written out here on purpose, not read from roles.py: this is the specification the
# role table must meet, so a grant added or dropped there by mistake fails here.
MANAGE = {"create", "read", "list", "update", "rotate", "disable", "enable", "revoke", "delete"}
USE = {"encrypt", "decrypt", "reencrypt", "datakey", "sign", "verify", "mac", "decapsulate",
       "random", "read"}
EXPECTED = {
    "key-admin": MANAGE,
    "key-user": USE,
    "auditor": {"audit:read", "reports:read"},
    "operator": {"sys:seal", "sys:read", "sys:tokens", "sys:policies", "sys:audit",
                 "sys:dual-control", "sys:backup"},
    "approver": {"approve"},
}
KEY_MATERIAL = {"encrypt", "decrypt", "reencrypt", "datakey", "sign", "verify", "mac",
                "decapsulate", "export", "import", "unprotect-compromised"}


def holder(*names: str) -> Identity:
    return Identity("acc_00000000000000cc", "someone", names, None, 0.0)


@pytest.mark.parametrize("role", sorted(EXPECTED))
@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_policy_matrix_each_role_against_each_operation(authorizer: Authorizer, role: str,
                                                        operation: str) -> None:
    expected = operation in EXPECTED[role]
    for key in ("payments/cards", "a", "deep/ly/nested/key"):
        assert authorizer.allowed(holder(role), operation, key) is expected, (role, key)
    # operations on no key (list pages, random, sys:*, audit, reports, approve)
    assert authorizer.allowed(holder(role), operation, None) is expected
    decision = authorizer.explain([role], operation, "payments/cards")
    assert decision.allowed is expected
    if expected:
        assert decision.rule is not None and decision.rule.policy == role


def test_the_roles_are_exactly_the_documented_five() -> None:
    assert set(BUILTIN_ROLES) == set(EXPECTED)
    assert [role.name for role in ROLES] == list(BUILTIN_ROLES)


def test_duties_are_separated() -> None:
    grants = {name: set(policy.rules[0].operations) for name, policy in BUILTIN_ROLES.items()}
    assert not grants["key-admin"] & KEY_MATERIAL  # manages, never uses material
    assert not grants["key-user"] & (MANAGE - {"read"})  # uses, never manages
    assert not grants["operator"] & (MANAGE | USE | KEY_MATERIAL | {"audit:read"})
    assert grants["auditor"] == {"audit:read", "reports:read"}
    for name, granted in grants.items():
        assert not granted & {"export", "import", "unprotect-compromised", "*"}, name


def test_every_grant_says_why() -> None:
    for role in ROLES:
        assert role.summary
        for operation, reason in role.grants.items():
            assert operation in OPERATIONS
            assert len(reason) > 10, (role.name, operation)


def test_two_roles_on_one_token_hold_the_union(authorizer: Authorizer) -> None:
    both = holder("key-admin", "key-user")
    assert authorizer.allowed(both, "rotate", "k") and authorizer.allowed(both, "decrypt", "k")
    assert not authorizer.allowed(both, "sys:seal", None)


def test_builtin_roles_are_listed_and_read_but_never_written(store: PolicyStore) -> None:
    names = [policy.name for policy in store.list()]
    assert names[:6] == ["root", "approver", "auditor", "key-admin", "key-user", "operator"]
    for name, policy in BUILTIN_ROLES.items():
        assert store.get(name) == policy and policy.builtin
        body = policy.to_json()
        assert body["builtin"] is True and body["description"]
        with pytest.raises(Conflict) as caught:
            parse_policy(name, {"rules": [{"keys": "**", "operations": ["*"]}]})
        assert caught.value.message == f"the {name} policy is built in and cannot be changed"
        with pytest.raises(Conflict):
            store.put(Policy(name, (Rule("**", ("*",)),)))
        with pytest.raises(Conflict) as caught:
            store.delete(name)
        assert caught.value.message == f"the {name} policy is built in and cannot be deleted"
        assert store.get(name) == policy


def test_a_stored_policy_with_a_role_name_is_shadowed_by_the_role(
        engine: Engine, store: PolicyStore, authorizer: Authorizer,
        caplog: pytest.LogCaptureFixture) -> None:
    with engine.begin() as connection:  # e.g. written before upgrading to built-in roles
        connection.execute(insert(policies).values(
            name="auditor", rules=json.dumps([{"keys": "**", "operations": ["*"]}]),
            created_at=0.0, updated_at=0.0))
    with caplog.at_level(logging.WARNING):
        assert [p.name for p in store.list()].count("auditor") == 1
    assert "built-in role's name" in caplog.text
    assert store.get("auditor") == BUILTIN_ROLES["auditor"]
    assert not authorizer.allowed(holder("auditor"), "decrypt", "k")
