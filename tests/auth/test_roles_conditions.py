"""Rule conditions through the real app (in process): context keys (single and batch),
address ranges (from 127.0.0.1), specs on create, and strict validation of condition bodies.

(IPv6 clients behind a trusted proxy, which the server process's HTTP layer resolves:
tests/e2e/test_roles_conditions.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from http_helpers import assert_error, b64, create_key, encrypt, ok, unique
from inprocess_server import InProcessServer


@pytest.fixture(scope="module")
def root(shared_inprocess: InProcessServer) -> Iterator[httpx.Client]:
    with shared_inprocess.client() as client:
        yield client


def holder(server: InProcessServer, root: httpx.Client, policy: str,
           rules: list[dict[str, Any]]) -> httpx.Client:
    """A client whose token holds only ``policy``, freshly written with ``rules``."""
    ok(root.put(f"/v1/policies/{policy}", json={"rules": rules}))
    token = ok(root.post("/v1/auth/tokens", json={"policies": [policy]}))["token"]
    return server.client(token)


def test_every_decrypt_under_payments_must_carry_tenant(shared_inprocess: InProcessServer,
                                                        root: httpx.Client) -> None:
    name = f"payments/{unique('cards')}"
    create_key(root, name, "aes-256-gcm")
    with_tenant = encrypt(root, name, b"card", {"tenant": "acme"})["ciphertext"]
    without = encrypt(root, name, b"card")["ciphertext"]
    other_keys = encrypt(root, name, b"card", {"region": "eu"})["ciphertext"]
    rules = [{"keys": "payments/*", "operations": ["encrypt", "decrypt"],
              "conditions": {"context_keys": ["tenant"]}}]
    with holder(shared_inprocess, root, "cond-tenant", rules) as http:
        answer = ok(http.post("/v1/decrypt", json={"ciphertext": with_tenant,
                                                   "context": {"tenant": "acme"}}))
        assert answer["plaintext"] == b64(b"card")
        error = assert_error(http.post("/v1/decrypt", json={"ciphertext": without}),
                             403, "forbidden")
        # The key is not named (the ciphertext named it, not the caller); the reason is.
        assert error["message"] == (
            "token may not decrypt with the key this ciphertext names (policy cond-tenant "
            "rule 0 would allow it, but its conditions are not met: context_keys)")
        assert name not in error["message"]
        assert_error(http.post(f"/v1/keys/{name}/decrypt", json={
            "ciphertext": other_keys, "context": {"region": "eu"}}), 403, "forbidden")
        ok(http.post(f"/v1/keys/{name}/encrypt", json={"plaintext": b64(b"x"),
                                                      "context": {"tenant": "t"}}))
        assert_error(http.post(f"/v1/keys/{name}/encrypt", json={"plaintext": b64(b"x")}),
                     403, "forbidden")

        # a batch: each item is judged on its own context
        results = ok(http.post("/v1/decrypt", json={"batch": [
            {"ciphertext": with_tenant, "context": {"tenant": "acme"}},
            {"ciphertext": without},
            {"ciphertext": other_keys, "context": {"region": "eu"}},
        ]}))["results"]
        assert results[0]["plaintext"] == b64(b"card")
        assert [r.get("error", {}).get("code") for r in results] == [
            None, "forbidden", "forbidden"]
        results = ok(http.post(f"/v1/keys/{name}/encrypt", json={"batch": [
            {"plaintext": b64(b"a")}, {"plaintext": b64(b"b"), "context": {"tenant": "t"}},
        ]}))["results"]
        assert results[0]["error"]["code"] == "forbidden"
        assert results[1]["ciphertext"].startswith("kq1:")
    records = ok(root.get("/v1/audit", params={"key": name, "outcome": "denied"}))["records"]
    assert records and all(r["error_code"] == "forbidden" for r in records)


def test_source_ranges_seen_from_127_0_0_1(shared_inprocess: InProcessServer,
                                           root: httpx.Client) -> None:
    name = unique("cond/net")
    create_key(root, name, "aes-256-gcm")

    def enc(rules: list[dict[str, Any]], policy: str) -> httpx.Response:
        with holder(shared_inprocess, root, policy, rules) as http:
            return http.post(f"/v1/keys/{name}/encrypt", json={"plaintext": b64(b"x")})

    def allow(source: list[str]) -> list[dict[str, Any]]:
        return [{"keys": "cond/*", "operations": ["encrypt"], "conditions": {"source": source}}]

    ok(enc(allow(["127.0.0.0/8"]), "cond-loopback"))
    ok(enc(allow(["10.0.0.0/8", "127.0.0.1/32"]), "cond-one-of"))
    error = assert_error(enc(allow(["10.0.0.0/8"]), "cond-ten"), 403, "forbidden")
    assert error["message"].endswith("conditions are not met: source)")
    assert "10.0.0.0" not in error["message"]  # the ranges themselves are not disclosed
    assert_error(enc(allow(["::1/128"]), "cond-v6-only"), 403, "forbidden")
    deny_here = [{"keys": "cond/*", "operations": ["encrypt"]},
                 {"keys": "**", "operations": ["*"], "effect": "deny",
                  "conditions": {"source": ["127.0.0.0/8"]}}]
    error = assert_error(enc(deny_here, "cond-deny-here"), 403, "forbidden")
    assert error["message"] == f"token may not encrypt {name} (denied by policy cond-deny-here " \
                               "rule 1)"
    deny_elsewhere = [deny_here[0], {**deny_here[1], "conditions": {"source": ["10.0.0.0/8"]}}]
    ok(enc(deny_elsewhere, "cond-deny-there"))


def test_allowed_specs_on_create(shared_inprocess: InProcessServer, root: httpx.Client) -> None:
    rules = [{"keys": "made/*", "operations": ["create"],
              "conditions": {"specs": ["aes-256-gcm", "ed25519"]}},
             {"keys": "made/*", "operations": ["create"], "effect": "deny",
              "conditions": {"specs": ["ed25519"], "source": ["127.0.0.0/8"]}}]
    with holder(shared_inprocess, root, "cond-specs", rules) as http:
        made = ok(http.post("/v1/keys", json={"name": unique("made/a"), "spec": "aes-256-gcm"}))
        assert made["spec"] == "aes-256-gcm"
        assert_error(http.post("/v1/keys", json={"name": unique("made/b"),
                                                 "spec": "chacha20-poly1305"}), 403, "forbidden")
        # allowed by rule 0, but rule 1 denies ed25519 from here
        error = assert_error(http.post("/v1/keys", json={"name": unique("made/c"),
                                                         "spec": "ed25519"}), 403, "forbidden")
        assert error["message"].endswith("(denied by policy cond-specs rule 1)")
        # A body that names no valid spec is refused by its type, before any policy runs.
        assert_error(http.post("/v1/keys", json={"name": unique("made/d")}),
                     400, "invalid_request")
        assert_error(http.post("/v1/keys", json={"name": unique("made/e"), "spec": 7}),
                     400, "invalid_request")
        assert_error(http.post("/v1/keys", json={"name": unique("other"),
                                                 "spec": "aes-256-gcm"}), 403, "forbidden")


@pytest.mark.parametrize(("conditions", "message"), [
    ({}, "rule 0: conditions must be an object with at least one of specs, context_keys, "
         "source"),
    ({"tenant": ["x"]}, "rule 0: unknown condition(s): tenant"),
    ({"specs": ["aes-256-gcm"]}, "rule 0: conditions.specs applies only to create; move "
                                 "decrypt to a rule of its own"),
    ({"context_keys": "tenant"}, "rule 0: conditions.context_keys must be a non-empty list "
                                 "of strings"),
    ({"source": ["10.0.0.5/8"]}, "rule 0: conditions.source: '10.0.0.5/8' has host bits set; "
                                 "did you mean 10.0.0.0/8?"),
    ({"source": ["::1/129"]}, "rule 0: conditions.source: '::1/129' is not an IPv4 or IPv6 "
                              "address range"),
])
def test_bad_condition_bodies_are_refused(root: httpx.Client, conditions: dict[str, Any],
                                          message: str) -> None:
    error = assert_error(root.put("/v1/policies/cond-bad", json={"rules": [
        {"keys": "**", "operations": ["decrypt"], "conditions": conditions}]}),
        400, "invalid_request")
    assert error["message"].startswith(message), error["message"]
    assert_error(root.get("/v1/policies/cond-bad"), 404, "not_found")  # nothing was written
