"""Policies: segment-aware globs, strict validation, deny by default, deny wins, caches."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import Engine, event, insert

from keyquorum.auth.authorizer import Authorizer
from keyquorum.auth.globs import glob_matches, validate_glob
from keyquorum.auth.identity import Identity
from keyquorum.auth.operations import OPERATIONS
from keyquorum.auth.policy_store import PolicyStore, parse_policy
from keyquorum.auth.rules import ROOT_POLICY, Policy, Rule
from keyquorum.errors import Conflict, Forbidden, InvalidRequest, NotFound
from keyquorum.storage.schema import policies

pytestmark = pytest.mark.postgresql

if TYPE_CHECKING:
    from conftest import FakeClock


def identity(*policy_names: str) -> Identity:
    return Identity("acc_00000000000000bb", "app", policy_names, None, 0.0)


def put(store: PolicyStore, name: str, *rules: dict[str, Any]) -> None:
    store.put(parse_policy(name, {"rules": list(rules)}))


# -- globs ----------------------------------------------------------------------

@pytest.mark.parametrize(("glob", "key", "matches"), [
    ("payments/cards", "payments/cards", True),
    ("payments/cards", "payments/cards2", False),
    ("payments/cards", "payments", False),
    ("payments/*", "payments/cards", True),
    ("payments/*", "payments/cards/eu", False),  # * stays inside one segment
    ("payments/*", "payments", False),
    ("payments/**", "payments/cards", True),
    ("payments/**", "payments/cards/eu", True),  # ** crosses segments
    ("payments/**", "payments", False),
    ("payments/**", "paymentsx/cards", False),
    ("*", "payments", True),
    ("*", "payments/cards", False),
    ("**", "payments/cards/eu", True),
    ("*/cards", "payments/cards", True),
    ("*/cards", "a/b/cards", False),
    ("**/cards", "a/b/cards", True),
    ("pay*", "payments", True),
    ("pay*", "payments/cards", False),
    ("card?", "cards", True),
    ("card?", "card", False),
    ("a?b", "a/b", False),  # ? never matches /
    ("a.b", "axb", False),  # . is literal, not a regex wildcard
    ("db-*.key", "db-01.key", True),
])
def test_glob_semantics(glob: str, key: str, matches: bool) -> None:
    assert glob_matches(validate_glob(glob), key) is matches


@pytest.mark.parametrize("glob", [
    "", "Payments/*", "pay ments", "a//b", "/a", "a/", "a/../b", "./a", "***", "a/***",
    "a[bc]", "x" * 257, 7, None,
])
def test_bad_globs_are_refused(glob: object) -> None:
    with pytest.raises(InvalidRequest):
        validate_glob(glob)


# -- parsing --------------------------------------------------------------------

def test_a_valid_policy_parses_with_allow_as_the_default_effect() -> None:
    policy = parse_policy("app", {"rules": [
        {"keys": "app/**", "operations": ["encrypt", "decrypt", "encrypt"]},
        {"keys": "app/legacy", "operations": ["*"], "effect": "deny"},
    ]})
    assert policy == Policy("app", (Rule("app/**", ("encrypt", "decrypt"), "allow"),
                                    Rule("app/legacy", ("*",), "deny")))
    assert parse_policy("app", policy.to_json()) == policy


def test_every_documented_operation_is_accepted() -> None:
    ops = sorted(OPERATIONS)
    assert parse_policy("all", {"rules": [{"keys": "*", "operations": ops}]}).rules[0].operations
    assert {"random", "sys:read", "audit:read", "sys:tokens"} <= OPERATIONS


@pytest.mark.parametrize(("body", "complaint"), [
    ([], "must be an object"),
    ({}, "non-empty list of rules"),
    ({"rules": []}, "non-empty list of rules"),
    ({"rules": "x"}, "non-empty list of rules"),
    ({"rules": [{"keys": "*", "operations": ["read"]}], "extra": 1}, "unknown policy field"),
    ({"rules": ["read"]}, "rule 0: a rule must be an object"),
    ({"rules": [{"operations": ["read"]}]}, "rule 0: keys (a glob) is required"),
    ({"rules": [{"keys": "a//b", "operations": ["read"]}]}, "rule 0: bad glob"),
    ({"rules": [{"keys": "*", "operations": []}]}, "operations must be a non-empty list"),
    ({"rules": [{"keys": "*", "operations": "read"}]}, "operations must be a non-empty list"),
    ({"rules": [{"keys": "*", "operations": ["read"]},
                {"keys": "*", "operations": ["encrpyt"]}]}, "rule 1: unknown operation 'encrpyt'"),
    ({"rules": [{"keys": "*", "operations": ["read"], "effect": "maybe"}]},
     "effect must be 'allow' or 'deny'"),
    ({"rules": [{"keys": "*", "operations": ["read"], "key": "x"}]}, "unknown field(s): key"),
])
def test_policy_validation_is_strict_and_says_what_is_wrong(body: object,
                                                            complaint: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_policy("app", body)
    assert complaint in caught.value.message


@pytest.mark.parametrize("name", ["", "App", "a b", "a/b", ".", "..", "x" * 65, None])
def test_bad_policy_names_are_refused(name: object) -> None:
    with pytest.raises(InvalidRequest):
        parse_policy(name, {"rules": [{"keys": "*", "operations": ["read"]}]})  # type: ignore[arg-type]


def test_root_is_reserved(store: PolicyStore) -> None:
    with pytest.raises(Conflict):
        parse_policy("root", {"rules": [{"keys": "*", "operations": ["read"]}]})
    with pytest.raises(Conflict):
        store.put(Policy("root", (Rule("*", ("read",)),)))
    with pytest.raises(Conflict):
        store.delete("root")
    assert store.get("root") == ROOT_POLICY


# -- the store ------------------------------------------------------------------

def test_policies_are_stored_replaced_listed_and_deleted(store: PolicyStore,
                                                         engine: Engine,
                                                         clock: FakeClock) -> None:
    put(store, "beta", {"keys": "*", "operations": ["read"]})
    put(store, "alpha", {"keys": "a/*", "operations": ["encrypt"]})
    put(store, "alpha", {"keys": "a/**", "operations": ["decrypt"]})
    assert store.get("alpha").rules == (Rule("a/**", ("decrypt",)),)
    assert [policy.name for policy in store.list() if not policy.builtin] == ["alpha", "beta"]
    # a fresh store (another process) reads the same thing from the database
    assert PolicyStore(engine, clock).get("alpha") == store.get("alpha")
    store.delete("beta")
    with pytest.raises(NotFound):
        store.get("beta")
    with pytest.raises(NotFound):
        store.delete("beta")


def test_a_corrupt_stored_policy_grants_nothing(engine: Engine, store: PolicyStore,
                                                authorizer: Authorizer) -> None:
    with engine.begin() as connection:
        connection.execute(insert(policies).values(
            name="broken", rules=json.dumps([{"keys": "*", "operations": ["fly"]}]),
            created_at=0.0, updated_at=0.0))
    put(store, "fine", {"keys": "*", "operations": ["read"]})
    assert [policy.name for policy in store.list() if not policy.builtin] == ["fine"]
    assert not authorizer.allowed(identity("broken"), "fly", None)


# -- authorization --------------------------------------------------------------

def test_nothing_is_allowed_by_default(authorizer: Authorizer) -> None:
    assert not authorizer.allowed(identity(), "read", "a")
    assert not authorizer.allowed(identity("does-not-exist"), "read", "a")


def test_root_may_do_everything(authorizer: Authorizer) -> None:
    root = identity("root")
    for operation in OPERATIONS:
        authorizer.authorize(root, operation, "any/key/at/all")
        authorizer.authorize(root, operation, None)


def test_a_matching_allow_grants_only_what_it_names(store: PolicyStore,
                                                    authorizer: Authorizer) -> None:
    put(store, "app", {"keys": "app/*", "operations": ["encrypt", "decrypt"]})
    app = identity("app", "missing")
    authorizer.authorize(app, "encrypt", "app/orders")
    assert not authorizer.allowed(app, "sign", "app/orders")
    assert not authorizer.allowed(app, "encrypt", "app/orders/eu")
    assert not authorizer.allowed(app, "encrypt", "other")
    assert not authorizer.allowed(app, "encrypt", None)  # app/* does not cover key-less ops
    with pytest.raises(Forbidden) as caught:
        authorizer.authorize(app, "sign", "app/orders")
    assert caught.value.message == "token may not sign app/orders"


def test_key_less_operations_need_a_match_everything_glob(store: PolicyStore,
                                                          authorizer: Authorizer) -> None:
    put(store, "ops", {"keys": "*", "operations": ["list", "random"]},
        {"keys": "**", "operations": ["sys:seal"]})
    ops = identity("ops")
    for operation in ("list", "random", "sys:seal"):
        authorizer.authorize(ops, operation, None)
    with pytest.raises(Forbidden) as caught:
        authorizer.authorize(ops, "audit:read", None)
    assert caught.value.message == "token may not audit:read"


def test_the_star_operation_means_every_operation(store: PolicyStore,
                                                  authorizer: Authorizer) -> None:
    put(store, "owner", {"keys": "team/**", "operations": ["*"]})
    for operation in OPERATIONS:
        authorizer.authorize(identity("owner"), operation, "team/a/b")


@pytest.mark.parametrize("deny_first", [True, False])
def test_a_matching_deny_wins_over_any_allow(store: PolicyStore, authorizer: Authorizer,
                                             deny_first: bool) -> None:
    allow = {"keys": "**", "operations": ["*"]}
    deny = {"keys": "payments/**", "operations": ["export", "decrypt"], "effect": "deny"}
    put(store, "broad", allow)
    put(store, "guard", deny)
    put(store, "both", *((deny, allow) if deny_first else (allow, deny)))
    for holder in (identity("both"), identity("broad", "guard"), identity("guard", "broad")):
        assert not authorizer.allowed(holder, "export", "payments/cards")
        assert not authorizer.allowed(holder, "decrypt", "payments/cards/eu")
        assert authorizer.allowed(holder, "encrypt", "payments/cards")
        assert authorizer.allowed(holder, "export", "other/key")


def test_decisions_change_as_soon_as_a_policy_changes(store: PolicyStore,
                                                      authorizer: Authorizer) -> None:
    app = identity("app")
    assert not authorizer.allowed(app, "encrypt", "app/a")  # cached: missing policy
    put(store, "app", {"keys": "app/*", "operations": ["encrypt"]})
    assert authorizer.allowed(app, "encrypt", "app/a")  # cached: allowed
    put(store, "app", {"keys": "app/*", "operations": ["encrypt"]},
        {"keys": "app/a", "operations": ["encrypt"], "effect": "deny"})
    assert not authorizer.allowed(app, "encrypt", "app/a")
    assert authorizer.allowed(app, "encrypt", "app/b")
    store.delete("app")
    assert not authorizer.allowed(app, "encrypt", "app/b")


def test_a_change_made_by_another_node_is_seen_after_refresh(engine: Engine,
                                                             clock: FakeClock) -> None:
    this_node = PolicyStore(engine, clock, refresh_after=0.0)
    authorizer = Authorizer(this_node)
    other_node = PolicyStore(engine, clock)
    put(other_node, "app", {"keys": "app/*", "operations": ["encrypt"]})
    app = identity("app")
    assert authorizer.allowed(app, "encrypt", "app/a")
    put(other_node, "app", {"keys": "app/*", "operations": ["decrypt"]})
    time.sleep(0.001)  # refresh_after=0: any age is stale
    assert not authorizer.allowed(app, "encrypt", "app/a")


def test_repeated_decisions_are_served_from_memory(store: PolicyStore, engine: Engine,
                                                   authorizer: Authorizer) -> None:
    put(store, "app", {"keys": "app/*", "operations": ["encrypt"]})
    app = identity("app")
    authorizer.allowed(app, "encrypt", "app/a")
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    started = time.perf_counter()
    for index in range(10_000):
        authorizer.allowed(app, "encrypt", f"app/{index % 50}")
    elapsed = time.perf_counter() - started
    assert statements == []
    assert elapsed < 1.0  # ~microseconds each; generous for slow CI machines
