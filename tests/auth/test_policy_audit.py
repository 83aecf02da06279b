"""Policies, tokens and the audit trail: denials, expiry, revocation, no token text anywhere."""

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


def _policy(root: httpx.Client, name: str, rules: list[dict[str, Any]]) -> None:
    ok(root.put(f"/v1/policies/{name}", json={"rules": rules}))


def _token(client: httpx.Client, policies: list[str], **extra: Any) -> dict[str, Any]:
    return ok(client.post("/v1/auth/tokens", json={"policies": policies, **extra}))  # type: ignore[no-any-return]


def _enc(http: httpx.Client, name: str) -> httpx.Response:
    return http.post(f"/v1/keys/{name}/encrypt", json={"plaintext": b64(b"p")})


def _all_audit(root: httpx.Client) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 1000}
    while True:
        page = ok(root.get("/v1/audit", params=params))
        records.extend(page["records"])
        if not page["next_page_token"]:
            return records
        params["page_token"] = page["next_page_token"]


def _by_request(root: httpx.Client, request_id: str) -> dict[str, Any]:
    found = [r for r in _all_audit(root) if r["request_id"] == request_id]
    assert len(found) == 1, found
    return found[0]


def test_encrypt_only_on_one_segment_glob(shared_inprocess: InProcessServer,
                                          root: httpx.Client) -> None:
    for name in ("payments/cards", "payments/x/y", "other"):
        create_key(root, name, "aes-256-gcm")
    text = encrypt(root, "payments/cards", b"card")["ciphertext"]
    _policy(root, "pay-encrypt", [{"keys": "payments/*", "operations": ["encrypt"]}])
    token = _token(root, ["pay-encrypt"], name="pay")["token"]

    with shared_inprocess.client(token) as http:
        assert ok(_enc(http, "payments/cards"))["key_version"] == 1
        assert_error(http.post("/v1/decrypt", json={"ciphertext": text}), 403, "forbidden")
        assert_error(http.post("/v1/keys/payments/cards/decrypt", json={"ciphertext": text}),
                     403, "forbidden")
        assert_error(http.post("/v1/reencrypt", json={"ciphertext": text}), 403, "forbidden")
        assert_error(http.post("/v1/keys/payments/cards/datakey"), 403, "forbidden")
        assert_error(_enc(http, "payments/x/y"), 403, "forbidden")
        assert_error(_enc(http, "other"), 403, "forbidden")
        # allowed by the glob, so the answer may say the key does not exist
        assert_error(_enc(http, "payments/not-created"), 404, "not_found")
        assert_error(http.get("/v1/keys/payments/cards"), 403, "forbidden")
        assert_error(http.post("/v1/keys", json={"name": "payments/new", "spec": "aes-256-gcm"}),
                     403, "forbidden")
        assert_error(http.post("/v1/keys/payments/cards/rotate"), 403, "forbidden")
        assert_error(http.get("/v1/audit"), 403, "forbidden")
        assert_error(http.post("/v1/random", json={"bytes": 4}), 403, "forbidden")
        assert_error(http.put("/v1/policies/mine", json={"rules": [
            {"keys": "**", "operations": ["*"]}]}), 403, "forbidden")
        assert_error(http.post("/v1/auth/tokens", json={"policies": ["pay-encrypt"]}),
                     403, "forbidden")
        # in a batch each item is judged on its own
        results = ok(http.post("/v1/decrypt", json={"batch": [{"ciphertext": text}]}))["results"]
        assert results[0]["error"]["code"] == "forbidden"
        me = ok(http.get("/v1/auth/tokens/self"))
        assert me["policies"] == ["pay-encrypt"] and me["name"] == "pay"


def test_deny_rule_wins_over_allow(shared_inprocess: InProcessServer, root: httpx.Client) -> None:
    open_name, closed_name = unique("deny/open"), unique("deny/secret/k")
    create_key(root, open_name, "aes-256-gcm")
    create_key(root, closed_name, "aes-256-gcm")
    closed_text = encrypt(root, closed_name, b"s")["ciphertext"]
    open_text = encrypt(root, open_name, b"o")["ciphertext"]
    _policy(root, "deny-broad", [{"keys": "**", "operations": ["encrypt", "decrypt"]}])
    _policy(root, "deny-secret", [{"keys": "deny/secret/**", "operations": ["decrypt"],
                                   "effect": "deny"}])
    _policy(root, "deny-one", [
        {"keys": "deny/**", "operations": ["*"]},
        {"keys": "deny/secret/*", "operations": ["encrypt"], "effect": "deny"}])
    both = _token(root, ["deny-broad", "deny-secret"])["token"]
    with shared_inprocess.client(both) as http:
        ok(http.post("/v1/decrypt", json={"ciphertext": open_text}))
        ok(_enc(http, closed_name))
        assert_error(http.post("/v1/decrypt", json={"ciphertext": closed_text}),
                     403, "forbidden")
    single = _token(root, ["deny-one"])["token"]
    with shared_inprocess.client(single) as http:
        ok(_enc(http, open_name))
        ok(http.post("/v1/decrypt", json={"ciphertext": closed_text}))
        assert_error(_enc(http, closed_name), 403, "forbidden")


def test_tokens_cannot_grant_policies_they_do_not_hold(shared_inprocess: InProcessServer,
                                                      root: httpx.Client) -> None:
    _policy(root, "grant-admin", [{"keys": "*", "operations": ["sys:tokens"]}])
    _policy(root, "grant-enc", [{"keys": "grant/**", "operations": ["encrypt"]}])
    _policy(root, "grant-other", [{"keys": "**", "operations": ["*"]}])
    parent = _token(root, ["grant-admin", "grant-enc"])["token"]
    with shared_inprocess.client(parent) as http:
        child = _token(http, ["grant-enc"])
        assert child["token"] and child["accessor"]
        assert_error(http.post("/v1/auth/tokens", json={"policies": ["grant-other"]}),
                     403, "forbidden")
        assert_error(http.post("/v1/auth/tokens", json={"policies": ["grant-enc", "root"]}),
                     403, "forbidden")
        assert_error(http.post("/v1/auth/tokens", json={"policies": ["grant-enc"],
                                                        "surprise": True}),
                     400, "invalid_request")


def test_revoked_token_is_unauthenticated(shared_inprocess: InProcessServer,
                                          root: httpx.Client) -> None:
    _policy(root, "revoke-me", [{"keys": "**", "operations": ["encrypt"]}])
    name = unique("revoke-tok")
    create_key(root, name, "aes-256-gcm")
    made = _token(root, ["revoke-me"])
    with shared_inprocess.client(made["token"]) as http:
        ok(_enc(http, name))
        ok(root.delete(f"/v1/auth/tokens/{made['accessor']}"))
        assert_error(_enc(http, name), 401, "unauthenticated")
        assert_error(http.get("/v1/auth/tokens/self"), 401, "unauthenticated")
    assert_error(root.delete("/v1/auth/tokens/no-such-accessor"), 404, "not_found")
    # a token may revoke itself
    own = _token(root, ["revoke-me"])
    with shared_inprocess.client(own["token"]) as http:
        ok(http.delete(f"/v1/auth/tokens/{own['accessor']}"))
        assert_error(_enc(http, name), 401, "unauthenticated")


def test_expired_token_is_unauthenticated(shared_inprocess: InProcessServer,
                                          root: httpx.Client) -> None:
    _policy(root, "short-lived", [{"keys": "**", "operations": ["encrypt"]}])
    name = unique("expire")
    create_key(root, name, "aes-256-gcm")
    made = _token(root, ["short-lived"], ttl=60)
    assert made["expires_at"]
    with shared_inprocess.client(made["token"]) as http:
        ok(_enc(http, name))
        shared_inprocess.advance_clock(30)
        ok(_enc(http, name))
        shared_inprocess.advance_clock(90)
        error = assert_error(_enc(http, name), 401, "unauthenticated")
        assert made["token"] not in error["message"]
    assert_error(root.post("/v1/auth/tokens", json={"policies": ["short-lived"], "ttl": "soon"}),
                 400, "invalid_request")


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer garbage",
                                    "Basic dXNlcjpwYXNz", "bearer kq-not-a-real-token"])
def test_missing_or_garbage_bearer(shared_inprocess: InProcessServer, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    with shared_inprocess.anonymous(headers) as http:
        assert_error(http.post("/v1/keys/anything/encrypt", json={"plaintext": ""}),
                     401, "unauthenticated")
        assert_error(http.get("/v1/keys"), 401, "unauthenticated")
        assert_error(http.get("/v1/audit"), 401, "unauthenticated")


def test_every_request_is_audited_by_accessor_never_by_token(
        shared_inprocess: InProcessServer, root: httpx.Client) -> None:
    name = unique("audited")
    create_key(root, name, "aes-256-gcm")
    _policy(root, "audited-enc", [{"keys": name, "operations": ["encrypt"]}])
    made = _token(root, ["audited-enc"], name="auditee")
    token, accessor = made["token"], made["accessor"]
    assert token != accessor and token not in accessor

    with shared_inprocess.client(token) as http:
        good = _enc(http, name)
        denied = http.post("/v1/decrypt", json={"ciphertext": ok(good)["ciphertext"]})
        failed = http.post(f"/v1/keys/{name}/encrypt", json={"plaintext": "%%%"})
        missing = _enc(http, "audited-none")
    # (a wrong token is counted per client, not recorded one by one: tests/api/)
    assert_error(denied, 403, "forbidden")
    assert_error(failed, 400, "invalid_request")
    assert_error(missing, 403, "forbidden")

    expected = [
        (good, "ok", None, "encrypt", accessor),
        (denied, "denied", "forbidden", "decrypt", accessor),
        (failed, "error", "invalid_request", "encrypt", accessor),
        (missing, "denied", "forbidden", "encrypt", accessor),
    ]
    for answer, outcome, code, operation, identity in expected:
        record = _by_request(root, answer.headers["x-request-id"])
        assert record["outcome"] == outcome, record
        assert record["error_code"] == code, record
        assert record["operation"] == operation, record
        assert record["identity"] == identity, record
        assert record["time"] and record["id"]
    # a denied /v1/decrypt is recorded against the key its ciphertext names
    assert _by_request(root, denied.headers["x-request-id"])["key"] == name
    ok_record = _by_request(root, good.headers["x-request-id"])
    assert (ok_record["key"], ok_record["key_version"]) == (name, 1)
    assert ok_record["client"] == "127.0.0.1"

    # filters
    mine = ok(root.get("/v1/audit", params={"identity": accessor, "limit": 1000}))["records"]
    assert {r["request_id"] for r in mine} >= {a.headers["x-request-id"]
                                              for a in (good, denied, failed, missing)}
    denied_only = ok(root.get("/v1/audit", params={"identity": accessor,
                                                   "outcome": "denied"}))["records"]
    assert denied_only and all(r["outcome"] == "denied" for r in denied_only)

    # the token text is nowhere: not in the audit answer, not in the database files
    everything = root.get("/v1/audit", params={"limit": 1000}).text
    assert accessor in everything
    assert token not in everything
    assert shared_inprocess.root_token not in everything
    for path in shared_inprocess.data_dir.glob("keyquorum.db*"):
        raw = path.read_bytes()
        assert token.encode() not in raw, path
        assert shared_inprocess.root_token.encode() not in raw, path
