"""POST /v1/policies/simulate through the real app (in process): answers, the deciding rule,
token lookups by accessor, who may ask, and every bad question."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from http_helpers import assert_error, b64, ok
from inprocess_server import InProcessServer


@pytest.fixture(scope="module")
def root(shared_inprocess: InProcessServer) -> Iterator[httpx.Client]:
    with shared_inprocess.client() as client:
        ok(client.put("/v1/policies/sim-pay", json={"rules": [
            {"keys": "**", "operations": ["encrypt"]},
            {"keys": "payments/*", "operations": ["decrypt", "encrypt"],
             "conditions": {"context_keys": ["tenant"]}},
            {"keys": "payments/cards", "operations": ["decrypt"]},
            {"keys": "payments/root-*", "operations": ["*"], "effect": "deny"},
            {"keys": "payments/*", "operations": ["*"], "effect": "deny",
             "conditions": {"source": ["10.66.0.0/16"]}},
            {"keys": "**", "operations": ["create"], "conditions": {"specs": ["ed25519"]}},
        ]}))
        ok(client.put("/v1/policies/sim-policies-only", json={"rules": [
            {"keys": "**", "operations": ["sys:policies"]}]}))
        yield client


def simulate(http: httpx.Client, **body: Any) -> httpx.Response:
    return http.post("/v1/policies/simulate", json=body)


def ask(http: httpx.Client, **body: Any) -> dict[str, Any]:
    return ok(simulate(http, **body))  # type: ignore[no-any-return]


def deciding(answer: dict[str, Any]) -> tuple[str, int, str, str] | None:
    rule = answer["rule"]
    return None if rule is None else (rule["policy"], rule["index"], rule["effect"], rule["keys"])


def test_the_most_specific_rule_explains_an_allow(root: httpx.Client) -> None:
    here = "127.0.0.1"  # outside rule 4's denied range
    answer = ask(root, policies=["sim-pay"], operation="decrypt", key="payments/cards",
                 client=here)
    assert answer["allowed"] is True
    assert deciding(answer) == ("sim-pay", 2, "allow", "payments/cards")
    assert answer["rule"]["operations"] == ["decrypt"]
    assert answer["policies"] == ["sim-pay"] and answer["unmet"] == []
    # with the tenant, rule 1 also allows, but the literal key name of rule 2 is narrower
    answer = ask(root, policies=["sim-pay"], operation="decrypt", key="payments/cards",
                 context={"tenant": "acme"}, client=here)
    assert deciding(answer) == ("sim-pay", 2, "allow", "payments/cards")
    answer = ask(root, policies=["sim-pay"], operation="decrypt", key="payments/iban",
                 context={"tenant": "acme"}, client=here)
    assert deciding(answer) == ("sim-pay", 1, "allow", "payments/*")
    assert answer["rule"]["conditions"] == {"context_keys": ["tenant"]}
    answer = ask(root, policies=["sim-pay"], operation="encrypt", key="payments/iban",
                 context={"tenant": "acme"}, client="::1")
    assert deciding(answer) == ("sim-pay", 1, "allow", "payments/*")  # over the ** rule 0


def test_deny_wins_and_names_the_deny(root: httpx.Client) -> None:
    answer = ask(root, policies=["sim-pay"], operation="encrypt", key="payments/root-ca",
                 context={"tenant": "acme"})
    assert answer["allowed"] is False
    assert deciding(answer) == ("sim-pay", 3, "deny", "payments/root-*")
    answer = ask(root, policies=["sim-pay"], operation="decrypt", key="payments/cards",
                 client="10.66.1.2")
    assert deciding(answer) == ("sim-pay", 4, "deny", "payments/*")
    # without a client address the deny's source condition cannot be ruled out: it applies
    answer = ask(root, policies=["sim-pay"], operation="decrypt", key="payments/x",
                 context={"tenant": "t"})
    assert deciding(answer) == ("sim-pay", 4, "deny", "payments/*")
    answer = ask(root, policies=["sim-pay"], operation="decrypt", key="payments/x",
                 context={"tenant": "t"}, client="192.0.2.1")
    assert answer["allowed"] is True and deciding(answer) == ("sim-pay", 1, "allow", "payments/*")


def test_denied_by_default_shows_the_conditions_that_failed(root: httpx.Client) -> None:
    answer = ask(root, policies=["sim-pay"], operation="decrypt", key="payments/iban",
                 client="192.0.2.1")
    assert answer["allowed"] is False and answer["rule"] is None
    assert [(u["index"], u["failed"]) for u in answer["unmet"]] == [(1, ["context_keys"])]
    answer = ask(root, policies=["sim-pay"], operation="create", key="any", spec="rsa-3072")
    assert answer["rule"] is None
    assert [(u["index"], u["failed"]) for u in answer["unmet"]] == [(5, ["specs"])]
    answer = ask(root, policies=["sim-pay"], operation="create", key="any", spec="ed25519")
    assert answer["allowed"] is True and deciding(answer) == ("sim-pay", 5, "allow", "**")
    answer = ask(root, policies=["sim-pay"], operation="sign", key="other")
    assert answer == {"allowed": False, "rule": None, "unmet": [], "policies": ["sim-pay"]}


def test_built_in_roles_and_root(root: httpx.Client) -> None:
    answer = ask(root, policies=["key-admin"], operation="decrypt", key="payments/cards")
    assert answer["allowed"] is False and answer["rule"] is None
    answer = ask(root, policies=["key-admin", "key-user"], operation="decrypt", key="k")
    assert deciding(answer) == ("key-user", 0, "allow", "**")
    answer = ask(root, policies=["operator"], operation="sys:seal")
    assert deciding(answer) == ("operator", 0, "allow", "**")
    answer = ask(root, policies=["root"], operation="export", key="anything")
    assert deciding(answer) == ("root", 0, "allow", "**")


def test_a_token_is_judged_by_the_policies_it_holds(shared_inprocess: InProcessServer,
                                                    root: httpx.Client) -> None:
    made = ok(root.post("/v1/auth/tokens", json={"policies": ["sim-pay", "auditor"]}))
    answer = ask(root, token_accessor=made["accessor"], operation="decrypt",
                 key="payments/cards", client="127.0.0.1")
    assert answer["allowed"] is True and answer["policies"] == ["sim-pay", "auditor"]
    assert ask(root, token_accessor=made["accessor"], operation="audit:read")["allowed"]
    # the answer is what the server then does with that token
    ok(root.post("/v1/keys", json={"name": "payments/cards", "spec": "aes-256-gcm"}))
    with shared_inprocess.client(made["token"]) as http:
        text = ok(http.post("/v1/keys/payments/cards/encrypt", json={"plaintext": b64(b"p")}))
        ok(http.post("/v1/decrypt", json={"ciphertext": text["ciphertext"]}))
    ok(root.delete(f"/v1/auth/tokens/{made['accessor']}"))
    error = assert_error(simulate(root, token_accessor=made["accessor"], operation="read",
                                  key="k"), 404, "not_found")
    assert error["message"] == "no token with that accessor"
    assert_error(simulate(root, token_accessor="acc_0000000000000000", operation="read",
                          key="k"), 404, "not_found")
    assert_error(simulate(root, token_accessor="not-an-accessor", operation="read", key="k"),
                 404, "not_found")


def test_an_expired_token_is_not_found(shared_inprocess: InProcessServer,
                                       root: httpx.Client) -> None:
    made = ok(root.post("/v1/auth/tokens", json={"policies": ["sim-pay"], "ttl": "1h"}))
    assert ask(root, token_accessor=made["accessor"], operation="encrypt", key="k")["allowed"]
    shared_inprocess.advance_clock(2 * 3600)
    assert_error(simulate(root, token_accessor=made["accessor"], operation="encrypt", key="k"),
                 404, "not_found")


def test_who_may_ask(shared_inprocess: InProcessServer, root: httpx.Client) -> None:
    user = ok(root.post("/v1/auth/tokens", json={"policies": ["key-user"]}))
    reader = ok(root.post("/v1/auth/tokens", json={"policies": ["sim-policies-only"]}))
    with shared_inprocess.client(user["token"]) as http:
        assert_error(simulate(http, policies=["key-user"], operation="decrypt", key="k"),
                     403, "forbidden")
    with shared_inprocess.client(reader["token"]) as http:
        assert ask(http, policies=["key-user"], operation="decrypt", key="k")["allowed"]
        mine = ask(http, token_accessor=reader["accessor"], operation="sys:policies")
        assert mine["allowed"] and mine["policies"] == ["sim-policies-only"]
        # another token's policies are token metadata: that needs sys:tokens as well
        error = assert_error(simulate(http, token_accessor=user["accessor"],
                                      operation="decrypt", key="k"), 403, "forbidden")
        assert error["message"] == "token may not sys:tokens"
    records = ok(root.get("/v1/audit", params={"identity": reader["accessor"]}))["records"]
    assert {(r["operation"], r["outcome"]) for r in records} == {
        ("sys:policies", "ok"), ("sys:policies", "denied")}


@pytest.mark.parametrize(("body", "message"), [
    ({"operation": "read", "key": "k"}, "give exactly one of token_accessor or policies"),
    ({"policies": ["sim-pay"], "token_accessor": "acc_0000000000000000", "operation": "read",
      "key": "k"}, "give exactly one of token_accessor or policies"),
    ({"policies": [], "operation": "read", "key": "k"}, "policies must be a non-empty list"),
    ({"policies": "sim-pay", "operation": "read", "key": "k"},
     "policies must be a non-empty list"),
    ({"policies": ["no-such-policy"], "operation": "read", "key": "k"},
     "no such policies: no-such-policy"),
    ({"policies": ["Bad Name"], "operation": "read", "key": "k"}, "bad policy name"),
    ({"token_accessor": 7, "operation": "read", "key": "k"},
     "token_accessor must be a token's accessor"),
    ({"policies": ["sim-pay"], "key": "k"}, "operation is required"),
    ({"policies": ["sim-pay"], "operation": "*", "key": "k"},
     "operation must be one of the policy operations"),
    ({"policies": ["sim-pay"], "operation": "decrpyt", "key": "k"},
     "operation must be one of the policy operations, not 'decrpyt'"),
    ({"policies": ["sim-pay"], "operation": "decrypt"}, "decrypt is done on a key: give key"),
    ({"policies": ["sim-pay"], "operation": "decrypt", "key": "Bad/Key"}, "key name"),
    ({"policies": ["sim-pay"], "operation": "decrypt", "key": "k", "context": {"a": 1}},
     "context.a must be a string"),
    ({"policies": ["sim-pay"], "operation": "sign", "key": "k", "context": {"a": "b"}},
     "context is part of datakey, decapsulate, decrypt, encrypt, reencrypt requests, not sign"),
    ({"policies": ["sim-pay"], "operation": "create", "key": "k", "spec": "aes-128-ecb"},
     "unknown spec"),
    ({"policies": ["sim-pay"], "operation": "read", "key": "k", "spec": "ed25519"},
     "spec is part of create requests, not read"),
    ({"policies": ["sim-pay"], "operation": "read", "key": "k", "client": "10.0.0.0/8"},
     "client must be an IPv4 or IPv6 address"),
    ({"policies": ["sim-pay"], "operation": "read", "key": "k", "client": 10},
     "client must be an IPv4 or IPv6 address"),
    ({"policies": ["sim-pay"], "operation": "read", "key": "k", "as": "x"},
     "unknown fields: as"),
])
def test_bad_questions_are_invalid_requests(root: httpx.Client, body: dict[str, Any],
                                            message: str) -> None:
    error = assert_error(simulate(root, **body), 400, "invalid_request")
    assert message in error["message"], error["message"]


def test_an_empty_or_non_object_body_is_refused(root: httpx.Client) -> None:
    assert_error(root.post("/v1/policies/simulate"), 400, "invalid_request")
    assert_error(root.post("/v1/policies/simulate", json=["read"]), 400, "invalid_request")
