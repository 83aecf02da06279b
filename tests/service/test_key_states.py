"""Each key and version state refuses what it must (409 key_state), and lets go when restored."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import httpx
import pytest

from http_helpers import (
    assert_error,
    b64,
    create_key,
    encrypt,
    get_key,
    ok,
    unb64,
    unique,
    versions,
)
from inprocess_server import InProcessServer

DAY = 86400


@pytest.fixture(scope="module")
def http(shared_inprocess: InProcessServer) -> Iterator[httpx.Client]:
    with shared_inprocess.client() as client:
        yield client


def _decrypt(http: httpx.Client, text: str, **extra: object) -> httpx.Response:
    return http.post("/v1/decrypt", json={"ciphertext": text, **extra})


def _encrypt(http: httpx.Client, name: str) -> httpx.Response:
    return http.post(f"/v1/keys/{name}/encrypt", json={"plaintext": b64(b"p")})


def test_disabled_key_refuses_everything_until_enabled(http: httpx.Client) -> None:
    name = unique("st/disabled")
    create_key(http, name, "aes-256-gcm")
    text = encrypt(http, name, b"kept")["ciphertext"]
    assert ok(http.post(f"/v1/keys/{name}/disable"))["state"] == "disabled"
    assert_error(_encrypt(http, name), 409, "key_state")
    assert_error(_decrypt(http, text), 409, "key_state")
    assert_error(http.post(f"/v1/keys/{name}/decrypt", json={"ciphertext": text}),
                 409, "key_state")
    assert_error(http.post("/v1/reencrypt", json={"ciphertext": text}), 409, "key_state")
    assert_error(http.post(f"/v1/keys/{name}/datakey"), 409, "key_state")
    assert_error(http.post(f"/v1/keys/{name}/disable"), 409, "key_state")  # already disabled
    assert ok(http.post(f"/v1/keys/{name}/enable"))["state"] == "enabled"
    assert unb64(ok(_decrypt(http, text))["plaintext"]) == b"kept"
    ok(_encrypt(http, name))


def test_disabled_signing_key(http: httpx.Client) -> None:
    name = unique("st/disabled-sign")
    create_key(http, name, "ed25519")
    signature = ok(http.post(f"/v1/keys/{name}/sign", json={"message": b64(b"m")}))["signature"]
    ok(http.post(f"/v1/keys/{name}/disable"))
    assert_error(http.post(f"/v1/keys/{name}/sign", json={"message": b64(b"m")}),
                 409, "key_state")
    assert_error(http.post(f"/v1/keys/{name}/verify",
                           json={"message": b64(b"m"), "signature": signature}),
                 409, "key_state")
    ok(http.post(f"/v1/keys/{name}/enable"))
    assert ok(http.post(f"/v1/keys/{name}/verify",
                        json={"message": b64(b"m"), "signature": signature}))["valid"]


def test_suspended_version(http: httpx.Client) -> None:
    name = unique("st/suspended")
    create_key(http, name, "aes-256-gcm")
    v1 = encrypt(http, name, b"v1")["ciphertext"]
    ok(http.post(f"/v1/keys/{name}/rotate"))
    v2 = encrypt(http, name, b"v2")["ciphertext"]

    key = ok(http.post(f"/v1/keys/{name}/disable", json={"version": 1}))
    assert versions(key)[1]["state"] == "suspended"
    assert key["state"] == "enabled"
    assert_error(_decrypt(http, v1), 409, "key_state")
    assert unb64(ok(_decrypt(http, v2))["plaintext"]) == b"v2"
    ok(_encrypt(http, name))

    # suspending the primary stops new protection, not v1-independent reads
    key = ok(http.post(f"/v1/keys/{name}/disable", json={"version": 2}))
    assert versions(key)[2]["state"] == "suspended"
    assert_error(_encrypt(http, name), 409, "key_state")
    assert_error(_decrypt(http, v2), 409, "key_state")

    key = ok(http.post(f"/v1/keys/{name}/enable", json={"version": 2}))
    assert versions(key)[2]["state"] == "active"
    key = ok(http.post(f"/v1/keys/{name}/enable", json={"version": 1}))
    assert versions(key)[1]["state"] == "deactivated"
    assert unb64(ok(_decrypt(http, v1))["plaintext"]) == b"v1"
    assert ok(_encrypt(http, name)).get("key_version") == 2
    assert_error(http.post(f"/v1/keys/{name}/enable", json={"version": 1}), 409, "key_state")
    assert_error(http.post(f"/v1/keys/{name}/disable", json={"version": 9}), 404, "not_found")


def test_compromised_version_needs_the_audited_override(http: httpx.Client) -> None:
    name = unique("st/compromised")
    create_key(http, name, "aes-256-gcm")
    v1 = encrypt(http, name, b"secret-v1", {"a": "b"})["ciphertext"]
    ok(http.post(f"/v1/keys/{name}/rotate"))
    key = ok(http.post(f"/v1/keys/{name}/revoke",
                       json={"version": 1, "reason": "compromised", "note": "leaked"}))
    assert versions(key)[1]["state"] == "compromised"
    assert key["primary_version"] == 2

    refused_id = assert_error(_decrypt(http, v1, context={"a": "b"}), 409,
                              "key_state")["request_id"]
    assert_error(http.post("/v1/reencrypt", json={"ciphertext": v1, "context": {"a": "b"}}),
                 409, "key_state")
    assert_error(_decrypt(http, v1, context={"a": "b"}, unsafe_allow_compromised=False),
                 409, "key_state")
    assert_error(_decrypt(http, v1, context={"a": "b"}, unsafe_allow_compromised="yes"),
                 400, "invalid_request")

    answer = _decrypt(http, v1, context={"a": "b"}, unsafe_allow_compromised=True)
    opened = ok(answer)
    assert unb64(opened["plaintext"]) == b"secret-v1"
    request_id = answer.headers["x-request-id"]
    records = ok(http.get("/v1/audit", params={"key": name, "operation": "decrypt"}))["records"]
    overridden = [r for r in records if r["request_id"] == request_id]
    assert len(overridden) == 1
    assert overridden[0]["outcome"] == "ok"
    assert overridden[0]["key_version"] == 1
    assert overridden[0].get("detail", {}).get("override") == "unsafe_allow_compromised"
    # the refusal is audited against the key and version found in the ciphertext
    refused = [r for r in records if r["request_id"] == refused_id]
    assert len(refused) == 1
    assert (refused[0]["outcome"], refused[0]["error_code"]) == ("error", "key_state")
    assert refused[0]["key_version"] == 1

    # the override re-protects under the current primary
    moved = ok(http.post("/v1/reencrypt", json={"ciphertext": v1, "context": {"a": "b"},
                                               "unsafe_allow_compromised": True}))
    assert moved["key_version"] == 2
    assert unb64(ok(_decrypt(http, moved["ciphertext"], context={"a": "b"}))[
        "plaintext"]) == b"secret-v1"
    # a compromised version cannot be re-enabled
    assert_error(http.post(f"/v1/keys/{name}/enable", json={"version": 1}), 409, "key_state")


def test_revoking_the_primary_moves_to_a_new_primary(http: httpx.Client) -> None:
    name = unique("st/revoke-primary")
    create_key(http, name, "aes-256-gcm")
    v1 = encrypt(http, name, b"x")["ciphertext"]
    key = ok(http.post(f"/v1/keys/{name}/revoke", json={"version": 1, "reason": "compromised"}))
    assert key["primary_version"] == 2
    assert {n: v["state"] for n, v in versions(key).items()} == {1: "compromised", 2: "active"}
    assert ok(_encrypt(http, name))["key_version"] == 2
    assert_error(_decrypt(http, v1), 409, "key_state")

    # superseded (not compromised) retires a version: still decrypts, never protects
    sign = unique("st/revoke-superseded")
    create_key(http, sign, "hmac-sha256")
    key = ok(http.post(f"/v1/keys/{sign}/revoke", json={"version": 1, "reason": "superseded"}))
    assert key["primary_version"] == 2
    assert versions(key)[1]["state"] == "deactivated"
    assert_error(http.post(f"/v1/keys/{sign}/revoke", json={"reason": "because"}),
                 400, "invalid_request")


def test_whole_key_revoke_refuses_protection(http: httpx.Client) -> None:
    name = unique("st/revoke-all")
    create_key(http, name, "aes-256-gcm")
    text = encrypt(http, name, b"x")["ciphertext"]
    ok(http.post(f"/v1/keys/{name}/rotate"))
    key = ok(http.post(f"/v1/keys/{name}/revoke", json={"reason": "compromised"}))
    assert {v["state"] for v in key["versions"]} == {"compromised"}
    assert_error(_encrypt(http, name), 409, "key_state")
    assert_error(http.post(f"/v1/keys/{name}/datakey"), 409, "key_state")
    assert_error(_decrypt(http, text), 409, "key_state")
    assert ok(_decrypt(http, text, unsafe_allow_compromised=True))["key_version"] == 1

    signer = unique("st/revoke-all-sign")
    create_key(http, signer, "ecdsa-p256")
    ok(http.post(f"/v1/keys/{signer}/revoke", json={"reason": "compromised"}))
    assert_error(http.post(f"/v1/keys/{signer}/sign", json={"message": b64(b"m")}),
                 409, "key_state")


def test_schedule_deletion_refuses_every_operation_until_cancelled(http: httpx.Client) -> None:
    name = unique("st/scheduled")
    create_key(http, name, "aes-256-gcm")
    text = encrypt(http, name, b"x")["ciphertext"]
    for days in (6, 31, 0, -1, "7", 7.5, True):
        assert_error(http.post(f"/v1/keys/{name}/schedule-deletion", json={"days": days}),
                     400, "invalid_request")
    assert get_key(http, name)["state"] == "enabled"

    answer = ok(http.post(f"/v1/keys/{name}/schedule-deletion", json={"days": 7}))
    assert answer["destroy_at"] is not None
    assert answer["state"] == "destroy-scheduled"
    assert_error(_encrypt(http, name), 409, "key_state")
    assert_error(_decrypt(http, text), 409, "key_state")
    assert_error(http.post(f"/v1/keys/{name}/datakey"), 409, "key_state")
    assert_error(http.post("/v1/reencrypt", json={"ciphertext": text}), 409, "key_state")
    assert_error(http.post(f"/v1/keys/{name}/rotate"), 409, "key_state")
    assert_error(http.post(f"/v1/keys/{name}/enable"), 409, "key_state")
    assert_error(http.patch(f"/v1/keys/{name}", json={"description": "x"}), 409, "key_state")
    assert_error(http.post(f"/v1/keys/{name}/schedule-deletion", json={"days": 8}),
                 409, "key_state")

    key = ok(http.post(f"/v1/keys/{name}/cancel-deletion"))
    assert (key["state"], key["destroy_at"]) == ("enabled", None)
    assert unb64(ok(_decrypt(http, text))["plaintext"]) == b"x"
    ok(_encrypt(http, name))
    assert_error(http.post(f"/v1/keys/{name}/cancel-deletion"), 409, "key_state")

    # a disabled key goes back to disabled; 30 days is the upper bound, default is the window
    ok(http.post(f"/v1/keys/{name}/disable"))
    ok(http.post(f"/v1/keys/{name}/schedule-deletion", json={"days": 30}))
    assert ok(http.post(f"/v1/keys/{name}/cancel-deletion"))["state"] == "disabled"
    ok(http.post(f"/v1/keys/{name}/enable"))


def test_destroy_after_the_window_erases_material(shared_inprocess: InProcessServer,
                                                  http: httpx.Client) -> None:
    name = unique("st/destroyed")
    keep = unique("st/kept")
    create_key(http, name, "aes-256-gcm")
    create_key(http, keep, "aes-256-gcm")
    texts = [encrypt(http, name, b"gone")["ciphertext"]]
    ok(http.post(f"/v1/keys/{name}/rotate"))
    texts.append(encrypt(http, name, b"gone too")["ciphertext"])
    kept_text = encrypt(http, keep, b"kept")["ciphertext"]
    key_id = get_key(http, name)["id"]

    ok(http.post(f"/v1/keys/{name}/schedule-deletion", json={"days": 7}))
    ran = shared_inprocess.advance_clock(6 * DAY)
    assert name not in ran["destroyed"]
    assert get_key(http, name)["state"] == "destroy-scheduled"
    ran = shared_inprocess.advance_clock(DAY + 60)
    assert name in ran["destroyed"]

    key = get_key(http, name)
    assert key["state"] == "destroyed"
    assert {v["state"] for v in key["versions"]} == {"destroyed"}
    assert all(v["destroyed_at"] for v in key["versions"])
    for text in texts:
        assert_error(_decrypt(http, text), 409, "key_state")
        assert_error(_decrypt(http, text, unsafe_allow_compromised=True), 409, "key_state")
    assert_error(_encrypt(http, name), 409, "key_state")
    assert_error(http.post(f"/v1/keys/{name}/cancel-deletion"), 409, "key_state")
    assert_error(http.post(f"/v1/keys/{name}/enable"), 409, "key_state")
    assert unb64(ok(_decrypt(http, kept_text))["plaintext"]) == b"kept"
    # the name stays taken by the tombstone
    assert_error(http.post("/v1/keys", json={"name": name, "spec": "aes-256-gcm"}),
                 409, "conflict")

    db = sqlite3.connect(shared_inprocess.data_dir / "keyquorum.db")
    try:
        rows = db.execute("SELECT version, material IS NULL FROM key_versions WHERE key_id = ?",
                          (key_id,)).fetchall()
        kept_rows = db.execute(
            "SELECT material IS NULL FROM key_versions WHERE key_id = "
            "(SELECT id FROM keys WHERE name = ?)", (keep,)).fetchall()
    finally:
        db.close()
    assert sorted(rows) == [(1, 1), (2, 1)]
    assert kept_rows == [(0,)]
