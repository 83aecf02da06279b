"""RSA signature schemes through the native API: ``scheme`` picks PSS (the default) or
PKCS#1 v1.5, per item, for every RSA key; any other key refuses it by name. Signatures
are checked with pyca under the public key the API exports."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from http_helpers import assert_error, b64, create_key, ok, unb64, unique
from inprocess_server import InProcessServer

MESSAGE = b"release build 42"


@pytest.fixture(scope="module")
def http(shared_inprocess: InProcessServer) -> Iterator[httpx.Client]:
    with shared_inprocess.client() as client:
        yield client


@pytest.fixture(scope="module")
def rsa2048(http: httpx.Client) -> str:
    name = unique("schemes/rsa-2048")
    create_key(http, name, "rsa-2048")
    return name


def _public(http: httpx.Client, name: str, version: int | None = None) -> rsa.RSAPublicKey:
    params = {"version": version} if version else None
    pem = ok(http.get(f"/v1/keys/{name}/public-key", params=params))["public_key_pem"]
    public = serialization.load_pem_public_key(pem.encode())
    assert isinstance(public, rsa.RSAPublicKey)
    return public


def _sign(http: httpx.Client, name: str, **item: Any) -> bytes:
    return unb64(ok(http.post(f"/v1/keys/{name}/sign",
                              json={"message": b64(MESSAGE), **item}))["signature"])


def _valid(http: httpx.Client, name: str, signature: bytes, **item: Any) -> bool:
    return ok(http.post(f"/v1/keys/{name}/verify", json={  # type: ignore[no-any-return]
        "message": b64(MESSAGE), "signature": b64(signature), **item}))["valid"]


def test_rsa_2048_key_is_2048_bits_and_signs_pss_by_default(http: httpx.Client,
                                                            rsa2048: str) -> None:
    public = _public(http, rsa2048)
    assert public.key_size == 2048
    signature = _sign(http, rsa2048)
    public.verify(signature, MESSAGE, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                                  salt_length=32), hashes.SHA256())
    assert _sign(http, rsa2048, scheme="pss") != signature  # PSS is randomized
    assert _valid(http, rsa2048, signature, scheme="pss")


@pytest.mark.parametrize(("hash_name", "algorithm"), [
    ("sha256", hashes.SHA256()), ("sha384", hashes.SHA384()), ("sha512", hashes.SHA512())])
def test_pkcs1v15_signature_checked_by_pyca(http: httpx.Client, rsa2048: str, hash_name: str,
                                            algorithm: hashes.HashAlgorithm) -> None:
    signature = unb64(ok(http.post(f"/v1/keys/{rsa2048}/sign", json={
        "digest": b64(_digest(hash_name)), "hash": hash_name,
        "scheme": "pkcs1v15"}))["signature"])
    if hash_name == "sha256":  # PKCS#1 v1.5 is deterministic: the message form agrees
        assert _sign(http, rsa2048, scheme="pkcs1v15") == signature
    public = _public(http, rsa2048)
    public.verify(signature, MESSAGE, padding.PKCS1v15(), algorithm)
    with pytest.raises(InvalidSignature):
        public.verify(signature, MESSAGE, padding.PSS(mgf=padding.MGF1(algorithm),
                                                      salt_length=algorithm.digest_size),
                      algorithm)
    assert ok(http.post(f"/v1/keys/{rsa2048}/verify", json={
        "digest": b64(_digest(hash_name)), "hash": hash_name, "scheme": "pkcs1v15",
        "signature": b64(signature)}))["valid"] is True
    # the scheme is part of what is verified: the same signature is not a PSS signature
    assert ok(http.post(f"/v1/keys/{rsa2048}/verify", json={
        "digest": b64(_digest(hash_name)), "hash": hash_name,
        "signature": b64(signature)}))["valid"] is False


def _digest(hash_name: str) -> bytes:
    return hashlib.new(hash_name, MESSAGE).digest()


def test_batch_items_choose_their_own_scheme(http: httpx.Client, rsa2048: str) -> None:
    results = ok(http.post(f"/v1/keys/{rsa2048}/sign", json={"batch": [
        {"message": b64(MESSAGE), "scheme": "pkcs1v15"},
        {"message": b64(MESSAGE)},
        {"message": b64(MESSAGE), "scheme": "raw"}]}))["results"]
    assert results[2]["error"]["code"] == "invalid_request"
    public = _public(http, rsa2048)
    public.verify(unb64(results[0]["signature"]), MESSAGE, padding.PKCS1v15(), hashes.SHA256())
    checked = ok(http.post(f"/v1/keys/{rsa2048}/verify", json={"batch": [
        {"message": b64(MESSAGE), "signature": results[0]["signature"], "scheme": "pkcs1v15"},
        {"message": b64(MESSAGE), "signature": results[1]["signature"]},
        {"message": b64(MESSAGE), "signature": results[0]["signature"]}]}))["results"]
    assert [item["valid"] for item in checked] == [True, True, False]


@pytest.mark.parametrize("spec", ["ecdsa-p521", "ed25519", "ml-dsa-44"])
def test_a_scheme_on_a_key_that_is_not_rsa_is_invalid_request(http: httpx.Client,
                                                               spec: str) -> None:
    name = unique(f"schemes/{spec}")
    create_key(http, name, spec)
    for scheme in ("pkcs1v15", "pss"):
        error = assert_error(http.post(f"/v1/keys/{name}/sign", json={
            "message": b64(MESSAGE), "scheme": scheme}), 400, "invalid_request")
        assert "scheme applies to RSA keys only" in error["message"]
        error = assert_error(http.post(f"/v1/keys/{name}/verify", json={
            "message": b64(MESSAGE), "signature": b64(b"x" * 64), "scheme": scheme}),
            400, "invalid_request")
        assert "scheme applies to RSA keys only" in error["message"]


def test_an_unknown_scheme_is_refused_before_anything_runs(http: httpx.Client,
                                                            rsa2048: str) -> None:
    for bad in ("PKCS1V15", "raw", 1, ""):
        assert_error(http.post(f"/v1/keys/{rsa2048}/sign", json={
            "message": b64(MESSAGE), "scheme": bad}), 400, "invalid_request")


def test_rsa_2048_follows_the_key_states(http: httpx.Client) -> None:
    """Disabled: no signing or verifying; rotated: old signatures verify by version."""
    name = unique("schemes/states")
    create_key(http, name, "rsa-2048")
    old = _sign(http, name, scheme="pkcs1v15")
    ok(http.post(f"/v1/keys/{name}/disable"))
    assert_error(http.post(f"/v1/keys/{name}/sign", json={
        "message": b64(MESSAGE), "scheme": "pkcs1v15"}), 409, "key_state")
    assert_error(http.post(f"/v1/keys/{name}/verify", json={
        "message": b64(MESSAGE), "signature": b64(old), "scheme": "pkcs1v15"}),
        409, "key_state")
    ok(http.post(f"/v1/keys/{name}/enable"))
    assert ok(http.post(f"/v1/keys/{name}/rotate"))["primary_version"] == 2
    assert _valid(http, name, old, scheme="pkcs1v15", key_version=1)
    assert not _valid(http, name, old, scheme="pkcs1v15")  # v2 did not sign it
    new = ok(http.post(f"/v1/keys/{name}/sign", json={
        "message": b64(MESSAGE), "scheme": "pkcs1v15"}))
    assert new["key_version"] == 2
    _public(http, name, 2).verify(unb64(new["signature"]), MESSAGE, padding.PKCS1v15(),
                                  hashes.SHA256())
