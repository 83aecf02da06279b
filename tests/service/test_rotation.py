"""Rotation: old ciphertexts keep decrypting, min_decrypt_version, reencrypt, automatic rotation."""

from __future__ import annotations

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


@pytest.fixture(scope="module")
def http(shared_inprocess: InProcessServer) -> Iterator[httpx.Client]:
    with shared_inprocess.client() as client:
        yield client


def test_rotate_keeps_old_ciphertexts_and_min_decrypt_version(http: httpx.Client) -> None:
    name = unique("rot/manual")
    create_key(http, name, "aes-256-gcm")
    v1 = encrypt(http, name, b"from v1", {"c": "1"})
    assert v1["key_version"] == 1

    key = ok(http.post(f"/v1/keys/{name}/rotate"))
    assert key["primary_version"] == 2
    states = {n: v["state"] for n, v in versions(key).items()}
    assert states == {1: "deactivated", 2: "active"}
    assert get_key(http, name)["primary_version"] == 2

    v2 = encrypt(http, name, b"from v2")
    assert v2["key_version"] == 2
    opened = ok(http.post("/v1/decrypt", json={"ciphertext": v1["ciphertext"],
                                              "context": {"c": "1"}}))
    assert (unb64(opened["plaintext"]), opened["key_version"]) == (b"from v1", 1)

    # reencrypt moves the v1 ciphertext to v2 without showing the plaintext
    moved = ok(http.post("/v1/reencrypt", json={"ciphertext": v1["ciphertext"],
                                               "context": {"c": "1"}}))
    assert moved["key_version"] == 2
    assert "plaintext" not in moved
    # with no destination_context the source context is kept
    opened = ok(http.post("/v1/decrypt", json={"ciphertext": moved["ciphertext"],
                                              "context": {"c": "1"}}))
    assert (unb64(opened["plaintext"]), opened["key_version"]) == (b"from v1", 2)

    # min_decrypt_version=2 refuses v1 but keeps v2 and the moved ciphertext
    key = ok(http.patch(f"/v1/keys/{name}", json={"min_decrypt_version": 2}))
    assert key["min_decrypt_version"] == 2
    assert_error(http.post("/v1/decrypt", json={"ciphertext": v1["ciphertext"],
                                               "context": {"c": "1"}}), 409, "key_state")
    assert_error(http.post("/v1/reencrypt", json={"ciphertext": v1["ciphertext"],
                                                 "context": {"c": "1"}}), 409, "key_state")
    assert unb64(ok(http.post("/v1/decrypt", json={"ciphertext": v2["ciphertext"]}))[
        "plaintext"]) == b"from v2"
    assert ok(http.post("/v1/decrypt", json={"ciphertext": moved["ciphertext"],
                                             "context": {"c": "1"}}))["key_version"] == 2
    # cannot point past the primary; lowering it again lets v1 back in
    # well formed, but beyond the key's current primary: a conflict with its state
    assert_error(http.patch(f"/v1/keys/{name}", json={"min_decrypt_version": 3}),
                 409, "conflict")
    ok(http.patch(f"/v1/keys/{name}", json={"min_decrypt_version": 1}))
    assert ok(http.post("/v1/decrypt", json={"ciphertext": v1["ciphertext"],
                                             "context": {"c": "1"}}))["key_version"] == 1


def test_rotated_signing_key_verifies_old_versions(http: httpx.Client) -> None:
    name = unique("rot/sign")
    create_key(http, name, "ecdsa-p256")
    old = ok(http.post(f"/v1/keys/{name}/sign", json={"message": b64(b"m")}))
    pem1 = ok(http.get(f"/v1/keys/{name}/public-key"))["public_key_pem"]
    ok(http.post(f"/v1/keys/{name}/rotate"))
    public = ok(http.get(f"/v1/keys/{name}/public-key"))
    assert public["version"] == 2 and public["public_key_pem"] != pem1
    assert ok(http.get(f"/v1/keys/{name}/public-key", params={"version": 1}))[
        "public_key_pem"] == pem1
    new = ok(http.post(f"/v1/keys/{name}/sign", json={"message": b64(b"m")}))
    assert new["key_version"] == 2
    assert ok(http.post(f"/v1/keys/{name}/verify", json={
        "message": b64(b"m"), "signature": old["signature"], "key_version": 1}))["valid"]
    assert ok(http.post(f"/v1/keys/{name}/verify", json={
        "message": b64(b"m"), "signature": new["signature"]}))["valid"]
    assert not ok(http.post(f"/v1/keys/{name}/verify", json={
        "message": b64(b"m"), "signature": old["signature"]}))["valid"]


def test_usage_limit_rotates_after_that_many_encrypts(http: httpx.Client) -> None:
    name = unique("rot/usage")
    key = create_key(http, name, "aes-256-gcm", usage_limit=5)
    assert key["usage_limit"] == 5
    texts = []
    for i in range(5):
        answer = encrypt(http, name, b"n%d" % i)
        assert answer["key_version"] == 1
        texts.append(answer["ciphertext"])
    key = get_key(http, name)
    assert key["primary_version"] == 2
    by_version = versions(key)
    assert by_version[1]["state"] == "deactivated"
    assert by_version[1]["protect_count"] == 5
    assert by_version[2]["state"] == "active"
    assert by_version[2]["protect_count"] == 0
    for i in range(5):
        assert encrypt(http, name, b"m%d" % i)["key_version"] == 2
    key = get_key(http, name)
    assert key["primary_version"] == 3
    assert versions(key)[2]["protect_count"] == 5
    assert encrypt(http, name, b"last")["key_version"] == 3
    assert versions(get_key(http, name))[3]["protect_count"] == 1
    for i, text in enumerate(texts):
        assert unb64(ok(http.post("/v1/decrypt", json={"ciphertext": text}))[
            "plaintext"]) == b"n%d" % i
    # the rotation is audited with its reason
    records = ok(http.get("/v1/audit", params={"key": name, "operation": "rotate"}))["records"]
    assert len(records) == 2
    assert all(r["outcome"] == "ok" for r in records)


def test_usage_limit_via_patch_and_datakey_counts(http: httpx.Client) -> None:
    name = unique("rot/usage-patch")
    create_key(http, name, "chacha20-poly1305")
    ok(http.patch(f"/v1/keys/{name}", json={"usage_limit": 2}))
    ok(http.post(f"/v1/keys/{name}/datakey"))
    ok(http.post(f"/v1/keys/{name}/datakey"))
    key = get_key(http, name)
    assert key["primary_version"] == 2
    assert versions(key)[1]["protect_count"] == 2


def test_rotation_period_rotates_when_the_clock_passes_it(
        shared_inprocess: InProcessServer, http: httpx.Client) -> None:
    name = unique("rot/period")
    steady = unique("rot/steady")
    key = create_key(http, name, "aes-256-gcm", rotation_period="1d")
    create_key(http, steady, "aes-256-gcm")
    assert key["rotation_period"] == 86400
    assert key["next_rotation"] is not None
    first = encrypt(http, name, b"before")
    assert_error(http.post("/v1/keys", json={"name": unique("rot/short"), "spec": "aes-256-gcm",
                                             "rotation_period": "10m"}), 400, "invalid_request")

    ran = shared_inprocess.advance_clock(3600)
    assert name not in ran["rotated"]
    assert get_key(http, name)["primary_version"] == 1

    ran = shared_inprocess.advance_clock(86400)
    assert name in ran["rotated"]
    assert steady not in ran["rotated"]
    key = get_key(http, name)
    assert key["primary_version"] == 2
    assert {n: v["state"] for n, v in versions(key).items()} == {1: "deactivated", 2: "active"}
    assert get_key(http, steady)["primary_version"] == 1
    assert encrypt(http, name, b"after")["key_version"] == 2
    assert unb64(ok(http.post("/v1/decrypt", json={"ciphertext": first["ciphertext"]}))[
        "plaintext"]) == b"before"

    # and again one period later, not earlier
    ran = shared_inprocess.advance_clock(86400 - 7200)
    assert name not in ran["rotated"]
    ran = shared_inprocess.advance_clock(7300)
    assert name in ran["rotated"]
    assert get_key(http, name)["primary_version"] == 3
    records = ok(http.get("/v1/audit", params={"key": name, "operation": "rotate"}))["records"]
    assert len(records) == 2
