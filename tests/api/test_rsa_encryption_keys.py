"""RSA encryption keys through the native API: purpose ``encrypt`` on an rsa spec makes an
asymmetric encryption key. Clients encrypt to its public key with pyca's OAEP and the
server decrypts (``decrypt-oaep``); the server encrypts too (``encrypt-oaep``). The key
follows the state rules, refuses kq1 verbs and signing, and symmetric keys refuse OAEP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from http_helpers import assert_error, b64, create_key, ok, unb64, unique
from inprocess_server import InProcessServer

pytestmark = pytest.mark.postgresql

_PYCA = {"sha256": hashes.SHA256(), "sha1": hashes.SHA1()}


@pytest.fixture(scope="module")
def http(shared_inprocess: InProcessServer) -> Iterator[httpx.Client]:
    with shared_inprocess.client() as client:
        yield client


@pytest.fixture(scope="module")
def rsa_enc(http: httpx.Client) -> str:
    name = unique("oaep/rsa-2048")
    key = create_key(http, name, "rsa-2048", purpose="encrypt")
    assert (key["spec"], key["purpose"]) == ("rsa-2048", "encrypt")
    return name


def _client_encrypt(http: httpx.Client, name: str, plaintext: bytes, hash_name: str,
                    version: int | None = None) -> bytes:
    params = {"version": version} if version else None
    pem = ok(http.get(f"/v1/keys/{name}/public-key", params=params))["public_key_pem"]
    public = serialization.load_pem_public_key(pem.encode())
    assert isinstance(public, rsa.RSAPublicKey)
    algorithm = _PYCA[hash_name]
    return public.encrypt(plaintext, padding.OAEP(mgf=padding.MGF1(algorithm),
                                                  algorithm=algorithm, label=None))


@pytest.mark.parametrize("hash_name", ["sha256", "sha1"])
def test_a_client_encrypts_to_the_public_key_and_the_server_decrypts(
        http: httpx.Client, rsa_enc: str, hash_name: str) -> None:
    block = _client_encrypt(http, rsa_enc, b"pin 1234", hash_name)
    answer = ok(http.post(f"/v1/keys/{rsa_enc}/decrypt-oaep",
                          json={"ciphertext": b64(block), "hash": hash_name}))
    assert unb64(answer["plaintext"]) == b"pin 1234"
    assert (answer["key"], answer["key_version"]) == (rsa_enc, 1)
    other = "sha1" if hash_name == "sha256" else "sha256"
    error = assert_error(http.post(f"/v1/keys/{rsa_enc}/decrypt-oaep", json={
        "ciphertext": b64(block), "hash": other}), 400, "invalid_ciphertext")
    assert "pin" not in error["message"]


def test_server_side_encryption_batches_and_its_bound(http: httpx.Client, rsa_enc: str) -> None:
    made = ok(http.post(f"/v1/keys/{rsa_enc}/encrypt-oaep", json={"batch": [
        {"plaintext": b64(b"a")}, {"plaintext": b64(bytes(191))},
        {"plaintext": b64(b"c"), "hash": "sha1"}]}))["results"]
    assert made[1]["error"]["code"] == "invalid_request"
    assert "at most 190 bytes" in made[1]["error"]["message"]
    opened = ok(http.post(f"/v1/keys/{rsa_enc}/decrypt-oaep", json={"batch": [
        {"ciphertext": made[0]["ciphertext"]},
        {"ciphertext": made[2]["ciphertext"], "hash": "sha1"},
        {"ciphertext": b64(b"junk")}]}))["results"]
    assert [unb64(opened[i]["plaintext"]) for i in (0, 1)] == [b"a", b"c"]
    assert opened[2]["error"]["code"] == "invalid_ciphertext"


def test_an_encryption_key_refuses_kq1_verbs_and_signing(http: httpx.Client,
                                                         rsa_enc: str) -> None:
    for verb, body in (("encrypt", {"plaintext": b64(b"x")}), ("datakey", {}),
                       ("sign", {"message": b64(b"x")})):
        error = assert_error(http.post(f"/v1/keys/{rsa_enc}/{verb}", json=body),
                             409, "conflict")
        assert rsa_enc in error["message"]
    aes = unique("oaep/aes")
    create_key(http, aes, "aes-256-gcm")
    text = ok(http.post(f"/v1/keys/{aes}/encrypt", json={"plaintext": b64(b"x")}))
    assert_error(http.post("/v1/reencrypt", json={"ciphertext": text["ciphertext"],
                                                  "destination_key": rsa_enc}),
                 409, "conflict")
    error = assert_error(http.post(f"/v1/keys/{aes}/encrypt-oaep",
                                   json={"plaintext": b64(b"x")}), 409, "conflict")
    assert "symmetric" in error["message"]
    signing = unique("oaep/signing")
    create_key(http, signing, "rsa-2048")
    assert_error(http.post(f"/v1/keys/{signing}/encrypt-oaep",
                           json={"plaintext": b64(b"x")}), 409, "conflict")
    assert_error(http.post("/v1/keys", json={"name": unique("oaep/ec"), "spec": "ecdsa-p256",
                                             "purpose": "encrypt"}), 400, "invalid_request")


def test_rsa_encryption_key_states(http: httpx.Client) -> None:
    name = unique("oaep/states")
    create_key(http, name, "rsa-2048", purpose="encrypt")
    old = _client_encrypt(http, name, b"v1", "sha256")
    ok(http.post(f"/v1/keys/{name}/disable"))
    assert_error(http.post(f"/v1/keys/{name}/decrypt-oaep", json={"ciphertext": b64(old)}),
                 409, "key_state")
    assert_error(http.post(f"/v1/keys/{name}/encrypt-oaep", json={"plaintext": b64(b"x")}),
                 409, "key_state")
    ok(http.post(f"/v1/keys/{name}/enable"))
    ok(http.post(f"/v1/keys/{name}/rotate"))
    assert unb64(ok(http.post(f"/v1/keys/{name}/decrypt-oaep", json={
        "ciphertext": b64(old), "key_version": 1}))["plaintext"]) == b"v1"
    assert_error(http.post(f"/v1/keys/{name}/decrypt-oaep", json={"ciphertext": b64(old)}),
                 400, "invalid_ciphertext")  # the primary (v2) did not make it
    assert ok(http.post(f"/v1/keys/{name}/encrypt-oaep",
                        json={"plaintext": b64(b"x")}))["key_version"] == 2
    ok(http.post(f"/v1/keys/{name}/revoke", json={"reason": "compromised", "version": 1}))
    assert_error(http.post(f"/v1/keys/{name}/decrypt-oaep", json={
        "ciphertext": b64(old), "key_version": 1}), 409, "key_state")
