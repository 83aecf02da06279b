"""Bad input gets a clear error with a stable code, the contract's error shape and a request id."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from http_helpers import assert_error, b64, create_key, encrypt, ok, unb64, unique
from inprocess_server import InProcessServer

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def http(shared_inprocess: InProcessServer) -> Iterator[httpx.Client]:
    with shared_inprocess.client() as client:
        yield client


@pytest.fixture(scope="module")
def aes(http: httpx.Client) -> str:
    name = unique("bad/aes")
    create_key(http, name, "aes-256-gcm")
    return name


def _flip(text: str, position: int) -> str:
    """Change one base64url character of the body after the ``kq1:`` prefix."""
    prefix, body = text.split(":", 1)
    index = position % len(body)
    replacement = "A" if body[index] != "A" else "B"
    return f"{prefix}:{body[:index]}{replacement}{body[index + 1:]}"


def test_tampered_ciphertext(http: httpx.Client, aes: str) -> None:
    text = encrypt(http, aes, b"tamper with me please", {"k": "v"})["ciphertext"]
    prefix, body = text.split(":", 1)
    assert prefix == "kq1"
    length = len(body)
    # header (format, key id, version), nonce, body, tag: every place is caught
    for position in (1, 5, 20, length // 2, length - 10, length - 3):
        assert_error(http.post("/v1/decrypt", json={"ciphertext": _flip(text, position),
                                                   "context": {"k": "v"}}),
                     400, "invalid_ciphertext")
    for broken in ("", "kq1:", "kq1:@@@@", "kq2:" + body, body, text[:-8], text + "AAAA",
                   "kq1:" + base64.urlsafe_b64encode(b"\x01" * 40).decode()):
        assert_error(http.post("/v1/decrypt", json={"ciphertext": broken,
                                                   "context": {"k": "v"}}),
                     400, "invalid_ciphertext")
    assert_error(http.post("/v1/decrypt", json={"ciphertext": 5}), 400, "invalid_request")
    # wrong context: missing, different value, extra entry
    for context in (None, {}, {"k": "w"}, {"k": "v", "extra": "x"}, {"K": "v"}):
        body_json: dict = {"ciphertext": text}
        if context is not None:
            body_json["context"] = context
        assert_error(http.post("/v1/decrypt", json=body_json), 400, "invalid_ciphertext")
    assert_error(http.post("/v1/decrypt", json={"ciphertext": text, "context": {"k": 1}}),
                 400, "invalid_request")
    assert_error(http.post("/v1/decrypt", json={"ciphertext": text, "context": ["k", "v"]}),
                 400, "invalid_request")
    assert unb64(ok(http.post("/v1/decrypt", json={"ciphertext": text, "context": {"k": "v"}}))[
        "plaintext"]) == b"tamper with me please"


def test_ciphertext_of_another_key_to_a_named_decrypt(http: httpx.Client, aes: str) -> None:
    other = unique("bad/other")
    create_key(http, other, "aes-256-gcm")
    text = encrypt(http, aes, b"mine")["ciphertext"]
    assert_error(http.post(f"/v1/keys/{other}/decrypt", json={"ciphertext": text}),
                 400, "invalid_ciphertext")
    assert ok(http.post(f"/v1/keys/{aes}/decrypt", json={"ciphertext": text}))["key"] == aes


def test_bad_base64_and_bodies(http: httpx.Client, aes: str) -> None:
    for plaintext in ("%%%", "abc", "aGVsbG8=\n", "aGVsbG8", 42, None, ["a"]):
        assert_error(http.post(f"/v1/keys/{aes}/encrypt", json={"plaintext": plaintext}),
                     400, "invalid_request")
    assert_error(http.post(f"/v1/keys/{aes}/encrypt", json={}), 400, "invalid_request")
    headers = {"Content-Type": "application/json"}
    for raw in (b"{", b"{'plaintext': ''}", b"not json", b"[1, 2]", b'"text"', b"null",
                b"", b'{"plaintext": "" ,}', b"\xff\xfe"):
        assert_error(http.post(f"/v1/keys/{aes}/encrypt", content=raw, headers=headers),
                     400, "invalid_request")
        assert_error(http.post("/v1/keys", content=raw, headers=headers), 400, "invalid_request")
    assert_error(http.post("/v1/sys/init", content=b"{", headers=headers), 400, "invalid_request")


def test_bad_specs_names_and_unknown_fields(http: httpx.Client, aes: str) -> None:
    for spec in ("aes-128-cbc", "AES-256-GCM", "", None, 7, "rsa-1024"):
        assert_error(http.post("/v1/keys", json={"name": unique("bad/spec"), "spec": spec}),
                     400, "invalid_request")
    for name in ("../x", "a//b", "A", "x" * 129, "", "/a", "a/", "./a", "a/../b", "a b",
                 "a\\b", "é", 12, None):
        assert_error(http.post("/v1/keys", json={"name": name, "spec": "aes-256-gcm"}),
                     400, "invalid_request")
    long_ok = "n" * 128
    assert create_key(http, long_ok, "aes-256-gcm")["name"] == long_ok
    deep = unique("bad/deep/er/still.ok_name-1")
    assert create_key(http, deep, "hmac-sha256")["name"] == deep

    assert_error(http.post("/v1/keys", json={"name": unique("bad/f"), "spec": "aes-256-gcm",
                                             "colour": "red"}), 400, "invalid_request")
    assert_error(http.post(f"/v1/keys/{aes}/encrypt", json={"plaintext": "", "colour": 1}),
                 400, "invalid_request")
    text = encrypt(http, aes, b"x")["ciphertext"]
    assert_error(http.post("/v1/decrypt", json={"ciphertext": text, "key": aes}),
                 400, "invalid_request")
    assert_error(http.patch(f"/v1/keys/{aes}", json={"spec": "chacha20-poly1305"}),
                 400, "invalid_request")
    assert_error(http.patch(f"/v1/keys/{aes}", json={}), 400, "invalid_request")
    assert_error(http.post(f"/v1/keys/{aes}/disable", json={"everything": True}),
                 400, "invalid_request")
    assert_error(http.post(f"/v1/keys/{aes}/schedule-deletion", json={"days": 7, "now": 1}),
                 400, "invalid_request")
    assert_error(http.post("/v1/random", json={"bytes": 4, "seed": 1}), 400, "invalid_request")
    assert_error(http.put("/v1/policies/bad-fields", json={"rules": [
        {"keys": "**", "operations": ["encrypt"], "when": "always"}]}), 400, "invalid_request")
    assert_error(http.put("/v1/policies/bad-op", json={"rules": [
        {"keys": "**", "operations": ["encrpyt"]}]}), 400, "invalid_request")
    for bad in ({"usage_limit": 0}, {"usage_limit": "5"}, {"rotation_period": "soon"},
                {"labels": {"a": 1}}, {"exportable": "yes"}, {"deletion_window_days": 6},
                {"deletion_window_days": 31}):
        assert_error(http.post("/v1/keys", json={"name": unique("bad/v"), "spec": "aes-256-gcm",
                                                 **bad}), 400, "invalid_request")


def test_size_limits(http: httpx.Client, aes: str) -> None:
    assert ok(http.post(f"/v1/keys/{aes}/encrypt",
                        json={"plaintext": b64(b"\x00" * LIMIT)}))["key_version"] == 1
    too_big = b64(b"\x00" * (LIMIT + 1))
    assert_error(http.post(f"/v1/keys/{aes}/encrypt", json={"plaintext": too_big}),
                 413, "too_large")
    results = ok(http.post(f"/v1/keys/{aes}/encrypt", json={"batch": [
        {"plaintext": b64(b"small")}, {"plaintext": too_big}]}))["results"]
    assert "ciphertext" in results[0]
    assert results[1]["error"]["code"] == "too_large"

    signer = unique("bad/sign")
    create_key(http, signer, "ed25519")
    assert_error(http.post(f"/v1/keys/{signer}/sign", json={"message": too_big}),
                 413, "too_large")

    item = {"plaintext": b64(b"i")}
    answer = ok(http.post(f"/v1/keys/{aes}/encrypt", json={"batch": [item] * 1000}))
    assert len(answer["results"]) == 1000
    assert all("ciphertext" in r for r in answer["results"])
    assert_error(http.post(f"/v1/keys/{aes}/encrypt", json={"batch": [item] * 1001}),
                 413, "too_large")
    assert_error(http.post("/v1/random", json={"batch": [{"bytes": 1}] * 1001}),
                 413, "too_large")


def test_not_found_and_conflict(http: httpx.Client, aes: str) -> None:
    missing = unique("bad/missing")
    assert_error(http.get(f"/v1/keys/{missing}"), 404, "not_found")
    assert_error(http.post(f"/v1/keys/{missing}/encrypt", json={"plaintext": ""}),
                 404, "not_found")
    assert_error(http.post(f"/v1/keys/{missing}/rotate"), 404, "not_found")
    assert_error(http.patch(f"/v1/keys/{missing}", json={"description": "x"}), 404, "not_found")
    assert_error(http.get(f"/v1/keys/{missing}/public-key"), 404, "not_found")
    assert_error(http.post("/v1/reencrypt", json={
        "ciphertext": encrypt(http, aes, b"x")["ciphertext"], "destination_key": missing}),
                 404, "not_found")
    assert_error(http.get("/v1/policies/never-written"), 404, "not_found")
    assert_error(http.get("/v1/no/such/route"), 404, "not_found")
    assert_error(http.post("/v1/keys", json={"name": aes, "spec": "aes-256-gcm"}),
                 409, "conflict")
    assert_error(http.post("/v1/keys", json={"name": aes, "spec": "ed25519"}), 409, "conflict")
    signer = unique("bad/pk")
    create_key(http, signer, "ed25519")
    assert_error(http.get(f"/v1/keys/{signer}/public-key", params={"version": 9}),
                 404, "not_found")
