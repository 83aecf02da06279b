"""Rule conditions (specs, context keys, source ranges), the deciding rule, and the cache."""

from __future__ import annotations

import ipaddress
import random
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import Engine

from keyquorum.auth.authorizer import Authorizer
from keyquorum.auth.conditions import Conditions, client_address
from keyquorum.auth.identity import Identity
from keyquorum.auth.policy_store import PolicyStore, parse_policy
from keyquorum.auth.rules import Rule
from keyquorum.errors import Forbidden, InvalidRequest

if TYPE_CHECKING:
    from conftest import FakeClock


def holder(*names: str) -> Identity:
    return Identity("acc_00000000000000dd", "app", names, None, 0.0)


def put(store: PolicyStore, name: str, *rules: dict[str, Any]) -> None:
    store.put(parse_policy(name, {"rules": list(rules)}))


def rule(keys: str, operations: list[str], conditions: dict[str, Any] | None = None,
         effect: str = "allow") -> dict[str, Any]:
    body: dict[str, Any] = {"keys": keys, "operations": operations, "effect": effect}
    if conditions is not None:
        body["conditions"] = conditions
    return body


# -- writing conditions -----------------------------------------------------------------

@pytest.mark.parametrize(("raw_rule", "complaint"), [
    (rule("*", ["create"], {}), "rule 0: conditions must be an object with at least one of "
                                "specs, context_keys, source"),
    (rule("*", ["create"], []), "rule 0: conditions must be an object"),  # type: ignore[arg-type]
    ({"keys": "*", "operations": ["create"], "conditions": None},
     "rule 0: conditions must be an object"),
    (rule("*", ["create"], {"spec": ["aes-256-gcm"]}),
     "rule 0: unknown condition(s): spec; known: specs, context_keys, source"),
    (rule("*", ["create"], {"specs": []}), "conditions.specs must be a non-empty list"),
    (rule("*", ["create"], {"specs": "aes-256-gcm"}), "conditions.specs must be a non-empty list"),
    (rule("*", ["create"], {"specs": [1]}), "conditions.specs must be a non-empty list"),
    (rule("*", ["create"], {"specs": ["aes-128-ecb"]}),
     "conditions.specs: unknown spec(s) aes-128-ecb; known specs: aes-256-gcm"),
    (rule("*", ["create", "rotate"], {"specs": ["aes-256-gcm"]}),
     "rule 0: conditions.specs applies only to create; move rotate to a rule of its own"),
    (rule("*", ["*"], {"specs": ["aes-256-gcm"]}),
     "conditions.specs applies only to create; name those operations instead of '*'"),
    (rule("*", ["decrypt", "sign"], {"context_keys": ["tenant"]}),
     "conditions.context_keys applies only to datakey, decapsulate, decrypt, encrypt, "
     "reencrypt; move sign to a rule of its own"),
    (rule("*", ["decrypt"], {"context_keys": [""]}),
     "conditions.context_keys must be a non-empty list of strings"),
    (rule("*", ["decrypt"], {"context_keys": ["x" * 257]}), "a key is at most 256 characters"),
    (rule("*", ["decrypt"], {"context_keys": [f"k{i}" for i in range(65)]}),
     "conditions.context_keys has at most 64 entries"),
    (rule("*", ["decrypt"], {"source": ["10.0.0.1/8"]}),
     "conditions.source: '10.0.0.1/8' has host bits set; did you mean 10.0.0.0/8?"),
    (rule("*", ["decrypt"], {"source": ["10.0.0.0/33"]}),
     "conditions.source: '10.0.0.0/33' is not an IPv4 or IPv6 address range"),
    (rule("*", ["decrypt"], {"source": ["office"]}), "'office' is not an IPv4 or IPv6"),
    (rule("*", ["decrypt"], {"source": "10.0.0.0/8"}),
     "conditions.source must be a non-empty list of strings"),
])
def test_bad_conditions_are_refused_with_the_rule_they_break(raw_rule: dict[str, Any],
                                                             complaint: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_policy("app", {"rules": [raw_rule]})
    assert complaint in caught.value.message


def test_conditions_round_trip_through_json_and_storage(store: PolicyStore, engine: Engine,
                                                        clock: FakeClock) -> None:
    body = {"rules": [
        rule("payments/*", ["decrypt", "encrypt"],
             {"context_keys": ["tenant", "tenant"], "source": ["10.0.0.0/8", "::1"]}),
        rule("**", ["create"], {"specs": ["aes-256-gcm", "ed25519"]}),
        rule("x", ["read"]),
    ]}
    policy = parse_policy("app", body)
    first = policy.rules[0].conditions
    assert first == Conditions(context_keys=("tenant",), source=(
        ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128")))
    assert policy.to_json()["rules"][0]["conditions"] == {
        "context_keys": ["tenant"], "source": ["10.0.0.0/8", "::1/128"]}
    assert "conditions" not in policy.to_json()["rules"][2]
    assert parse_policy("app", policy.to_json()) == policy
    store.put(policy)
    assert PolicyStore(engine, clock).get("app") == policy  # another process reads the same


# -- what conditions mean -----------------------------------------------------------------

def test_required_context_keys(store: PolicyStore, authorizer: Authorizer) -> None:
    put(store, "pay", rule("payments/*", ["decrypt", "encrypt"], {"context_keys": ["tenant"]}))
    app = holder("pay")
    assert authorizer.allowed(app, "decrypt", "payments/cards", context={"tenant": "acme"})
    assert authorizer.allowed(app, "encrypt", "payments/cards",
                              context={"tenant": "", "other": "x"})  # present, even empty
    assert not authorizer.allowed(app, "decrypt", "payments/cards", context={"Tenant": "acme"})
    assert not authorizer.allowed(app, "decrypt", "payments/cards", context={})
    assert not authorizer.allowed(app, "decrypt", "payments/cards")  # no context at all
    with pytest.raises(Forbidden) as caught:
        authorizer.authorize(app, "decrypt", "payments/cards", context={"x": "1"})
    assert caught.value.message == (
        "token may not decrypt payments/cards (policy pay rule 0 would allow it, but its "
        "conditions are not met: context_keys)")


def test_several_required_context_keys_all_must_be_present(store: PolicyStore,
                                                           authorizer: Authorizer) -> None:
    put(store, "pay", rule("**", ["encrypt"], {"context_keys": ["tenant", "purpose"]}))
    assert not authorizer.allowed(holder("pay"), "encrypt", "k", context={"tenant": "a"})
    assert authorizer.allowed(holder("pay"), "encrypt", "k",
                              context={"tenant": "a", "purpose": "b"})


@pytest.mark.parametrize(("client", "allowed"), [
    ("10.1.2.3", True),
    ("10.255.255.255", True),
    ("11.0.0.1", False),
    ("::ffff:10.9.9.9", True),  # an IPv4 client seen through a dual-stack socket
    ("::ffff:11.9.9.9", False),
    ("fd00:1234::7", True),
    ("fd00:1235::7", False),
    ("::1", True),
    ("127.0.0.1", False),
    ("not-an-address", False),  # unknown: an allow rule's condition is not met
    (None, False),
    ("", False),
])
def test_source_ranges_ipv4_and_ipv6(store: PolicyStore, authorizer: Authorizer,
                                     client: str | None, allowed: bool) -> None:
    put(store, "net", rule("**", ["encrypt"],
                           {"source": ["10.0.0.0/8", "fd00:1234::/32", "::1/128"]}))
    assert authorizer.allowed(holder("net"), "encrypt", "k", client=client) is allowed


def test_a_deny_rule_applies_only_when_its_conditions_hold(store: PolicyStore,
                                                           authorizer: Authorizer) -> None:
    put(store, "app", rule("**", ["encrypt", "create"]),
        rule("**", ["encrypt"], {"source": ["192.168.0.0/16"]}, effect="deny"),
        rule("**", ["create"], {"specs": ["hmac-sha256"]}, effect="deny"))
    app = holder("app")
    assert authorizer.allowed(app, "encrypt", "k", client="10.0.0.1")
    assert not authorizer.allowed(app, "encrypt", "k", client="192.168.4.4")
    assert authorizer.allowed(app, "create", "k", spec="aes-256-gcm")
    assert not authorizer.allowed(app, "create", "k", spec="hmac-sha256")
    with pytest.raises(Forbidden) as caught:
        authorizer.authorize(app, "create", "k", spec="hmac-sha256")
    assert caught.value.message == "token may not create k (denied by policy app rule 2)"


def test_an_unknown_fact_fails_closed_both_ways(store: PolicyStore,
                                                authorizer: Authorizer) -> None:
    put(store, "app", rule("**", ["encrypt"]),
        rule("**", ["encrypt"], {"source": ["192.168.0.0/16"]}, effect="deny"),
        rule("**", ["create"], {"specs": ["aes-256-gcm"]}))
    app = holder("app")
    # no known address: the deny might apply, so it does
    assert not authorizer.allowed(app, "encrypt", "k", client=None)
    assert not authorizer.allowed(app, "encrypt", "k", client="unix:/run/kq.sock")
    # no known spec: the allow's condition is not met
    assert not authorizer.allowed(app, "create", "k", spec=None)
    assert authorizer.allowed(app, "create", "k", spec="aes-256-gcm")


def test_allowed_specs_on_create(store: PolicyStore, authorizer: Authorizer) -> None:
    put(store, "makers", rule("team/**", ["create"], {"specs": ["aes-256-gcm", "ed25519"]}))
    makers = holder("makers")
    assert authorizer.allowed(makers, "create", "team/a", spec="ed25519")
    assert not authorizer.allowed(makers, "create", "team/a", spec="rsa-3072")
    assert not authorizer.allowed(makers, "create", "other", spec="ed25519")


def test_an_unconditioned_allow_elsewhere_still_allows(store: PolicyStore,
                                                       authorizer: Authorizer) -> None:
    # Conditions narrow the rule they are on, not other rules: a broad grant in another
    # policy still allows (simulate shows which rule did).
    put(store, "pay", rule("payments/*", ["decrypt"], {"context_keys": ["tenant"]}))
    put(store, "broad", rule("**", ["decrypt"]))
    assert authorizer.allowed(holder("pay", "broad"), "decrypt", "payments/cards")
    decision = authorizer.explain(["pay", "broad"], "decrypt", "payments/cards")
    assert decision.allowed and decision.rule is not None and decision.rule.policy == "broad"


# -- which rule explains the decision --------------------------------------------------------

def ref(decision: Any) -> tuple[str, int] | None:
    return None if decision.rule is None else (decision.rule.policy, decision.rule.index)


def test_the_most_specific_allow_explains_an_allow(store: PolicyStore,
                                                   authorizer: Authorizer) -> None:
    put(store, "a", rule("**", ["*"]),                       # 0
        rule("payments/**", ["decrypt"]),                    # 1
        rule("payments/*", ["decrypt"]),                     # 2: more literal than 1? equal
        rule("payments/ca*", ["decrypt"]),                   # 3: more literal characters
        rule("payments/cards", ["*"]),                       # 4: literal name beats globs
        rule("payments/cards", ["decrypt"]),                 # 5: named operation beats *
        rule("payments/cards", ["decrypt"], {"source": ["10.0.0.0/8"]}))  # 6: + condition
    assert ref(authorizer.explain(["a"], "decrypt", "payments/cards",
                                  client="10.0.0.1")) == ("a", 6)
    assert ref(authorizer.explain(["a"], "decrypt", "payments/cards",
                                  client="11.0.0.1")) == ("a", 5)
    assert ref(authorizer.explain(["a"], "encrypt", "payments/cards")) == ("a", 4)
    assert ref(authorizer.explain(["a"], "decrypt", "payments/cats")) == ("a", 3)
    # payments/** and payments/* have the same literal characters: the earlier one explains
    assert ref(authorizer.explain(["a"], "decrypt", "payments/x")) == ("a", 1)
    assert ref(authorizer.explain(["a"], "decrypt", "other")) == ("a", 0)


def test_deny_wins_even_over_a_more_specific_allow(store: PolicyStore,
                                                   authorizer: Authorizer) -> None:
    put(store, "allow", rule("payments/cards", ["decrypt"]))
    put(store, "guard", rule("payments/**", ["*"], effect="deny"),
        rule("payments/c*", ["decrypt"], effect="deny"))
    decision = authorizer.explain(["allow", "guard"], "decrypt", "payments/cards")
    assert not decision.allowed
    assert ref(decision) == ("guard", 1)  # the most specific of the denies
    assert decision.rule is not None and decision.rule.rule.effect == "deny"
    assert not authorizer.allowed(holder("allow", "guard"), "decrypt", "payments/cards")
    with pytest.raises(Forbidden) as caught:
        authorizer.authorize(holder("allow", "guard"), "decrypt", "payments/cards")
    assert caught.value.message.endswith("(denied by policy guard rule 1)")


def test_equal_specificity_goes_to_the_token_s_first_policy(store: PolicyStore,
                                                            authorizer: Authorizer) -> None:
    put(store, "one", rule("k", ["read"]))
    put(store, "two", rule("k", ["read"]))
    assert ref(authorizer.explain(["one", "two"], "read", "k")) == ("one", 0)
    assert ref(authorizer.explain(["two", "one"], "read", "k")) == ("two", 0)


def test_denied_by_default_lists_allow_rules_whose_conditions_failed(
        store: PolicyStore, authorizer: Authorizer) -> None:
    put(store, "pay", rule("payments/*", ["decrypt"], {"context_keys": ["tenant"]}),
        rule("payments/*", ["decrypt"], {"source": ["10.0.0.0/8"],
                                         "context_keys": ["region"]}),
        rule("other", ["decrypt"], {"context_keys": ["tenant"]}))
    decision = authorizer.explain(["pay"], "decrypt", "payments/cards", client="10.0.0.1")
    assert not decision.allowed and decision.rule is None
    assert [(u.ref.index, u.failed) for u in decision.unmet] == [
        (0, ("context_keys",)), (1, ("context_keys",))]
    nothing = authorizer.explain(["pay"], "sign", "payments/cards")
    assert nothing.rule is None and nothing.unmet == ()
    with pytest.raises(Forbidden) as caught:
        authorizer.authorize(holder("pay"), "sign", "payments/cards")
    assert caught.value.message == "token may not sign payments/cards"  # nothing to name
    assert decision.to_json()["unmet"][1] == {
        "policy": "pay", "index": 1, "keys": "payments/*", "operations": ["decrypt"],
        "effect": "allow", "conditions": {"context_keys": ["region"], "source": ["10.0.0.0/8"]},
        "failed": ["context_keys"]}


def test_root_explains_itself(authorizer: Authorizer) -> None:
    decision = authorizer.explain(["root"], "sys:seal", None)
    assert decision.allowed and ref(decision) == ("root", 0)


# -- the hot path -------------------------------------------------------------------------

def test_conditions_are_judged_per_request_not_cached_per_key(store: PolicyStore,
                                                              authorizer: Authorizer) -> None:
    put(store, "pay", rule("payments/*", ["decrypt"], {"context_keys": ["tenant"]}),
        rule("payments/*", ["encrypt"]))
    app = holder("pay")
    for _ in range(3):  # alternate on the same (policies, operation, key) cache entry
        assert authorizer.allowed(app, "decrypt", "payments/a", context={"tenant": "t"})
        assert not authorizer.allowed(app, "decrypt", "payments/a", context={})
    # Rules without conditions are answered whole from the cache, facts ignored.
    assert authorizer._decide(store.generation, ("pay",), "encrypt", "payments/a") is True
    assert authorizer._decide(store.generation, ("pay",), "sign", "payments/a") is False
    assert not isinstance(
        authorizer._decide(store.generation, ("pay",), "decrypt", "payments/a"), bool)


def test_a_deny_without_conditions_short_circuits_conditioned_allows(
        store: PolicyStore, authorizer: Authorizer) -> None:
    put(store, "app", rule("**", ["decrypt"], {"context_keys": ["t"]}),
        rule("secret/*", ["decrypt"], effect="deny"))
    assert authorizer._decide(store.generation, ("app",), "decrypt", "secret/x") is False
    assert not authorizer.allowed(holder("app"), "decrypt", "secret/x", context={"t": "1"})
    assert authorizer.allowed(holder("app"), "decrypt", "open/x", context={"t": "1"})


def test_the_fast_answer_and_the_explanation_always_agree(store: PolicyStore,
                                                          authorizer: Authorizer) -> None:
    rng = random.Random(5)  # a fixed, reproducible sample of policies
    globs = ["**", "*", "a/*", "a/**", "a/b", "a/?", "b/*", "a/b*"]
    operations = ["encrypt", "decrypt", "create", "read"]
    conditions: list[dict[str, Any] | None] = [
        None, {"source": ["10.0.0.0/8"]}, {"source": ["::1/128", "10.1.0.0/16"]}]
    for index in range(40):
        rules = []
        for _ in range(rng.randint(1, 4)):
            ops = rng.sample(operations, rng.randint(1, 2))
            chosen = rng.choice(conditions)
            if chosen is None and "create" in ops and rng.random() < 0.5:
                ops, chosen = ["create"], {"specs": ["aes-256-gcm"]}
            elif chosen is None and "create" not in ops and "read" not in ops \
                    and rng.random() < 0.5:
                chosen = {"context_keys": ["t"]}
            rules.append(rule(rng.choice(globs), ops, chosen,
                              rng.choice(["allow", "allow", "deny"])))
        put(store, f"p{index}", *rules)
    facts = [{"client": c, "context": x, "spec": s}
             for c in (None, "10.1.2.3", "10.2.0.1", "::1", "8.8.8.8")
             for x in (None, {"t": "1"})
             for s in (None, "aes-256-gcm", "ed25519")]
    for _ in range(300):
        names = tuple(f"p{i}" for i in rng.sample(range(40), rng.randint(1, 3)))
        operation = rng.choice(operations)
        key = rng.choice(["a", "a/b", "a/c", "a/bc", "b/x", "a/b/c", None])
        fact = rng.choice(facts)
        fast = authorizer.allowed(holder(*names), operation, key, **fact)
        assert authorizer.explain(names, operation, key, **fact).allowed is fast, \
            (names, operation, key, fact)


def test_client_addresses_are_normalized() -> None:
    assert client_address("::ffff:10.0.0.1") == ipaddress.ip_address("10.0.0.1")
    assert client_address("2001:db8::1") == ipaddress.ip_address("2001:db8::1")
    assert client_address("testclient") is None
    assert client_address(None) is None


def test_rule_specificity_order() -> None:
    def spec(keys: str, ops: tuple[str, ...] = ("read",), n: int = 0) -> tuple[int, ...]:
        conditions = Conditions(source=(ipaddress.ip_network("::1/128"),)) if n else None
        return Rule(keys, ops, conditions=conditions).specificity

    assert spec("a/b") > spec("a/b*") > spec("a/*") > spec("*")
    assert spec("a/b", ("read",)) > spec("a/b", ("*",))
    assert spec("a/b", n=1) > spec("a/b")
    assert spec("ab") > spec("a/b*")  # a literal name beats any glob, even a longer one
