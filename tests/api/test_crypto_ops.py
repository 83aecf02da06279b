"""Every spec's operations over raw HTTP; signatures checked independently with pyca."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from http_helpers import assert_error, b64, create_key, ok, unb64, unique
from inprocess_server import InProcessServer
from keyquorum.crypto.kem import encapsulate

pytestmark = pytest.mark.postgresql

AEAD_SPECS = ["aes-256-gcm", "chacha20-poly1305", "xchacha20-poly1305", "aes-256-gcm-siv"]
MAC_SPECS = ["hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512"]
ECDSA_RSA = {"ecdsa-p256": "sha256", "ecdsa-p384": "sha384", "ecdsa-p521": "sha512",
             "ecdsa-secp256k1": "sha256", "rsa-2048": "sha256", "rsa-3072": "sha256",
             "rsa-4096": "sha256"}
MESSAGE_ONLY = ["ed25519", "ml-dsa-44", "ml-dsa-65", "ml-dsa-87"]
KEM_SPECS = ["ml-kem-768", "ml-kem-1024", "x25519", "x25519-ml-kem-768"]
ALL_SPECS = AEAD_SPECS + MAC_SPECS + list(ECDSA_RSA) + MESSAGE_ONLY + KEM_SPECS
_HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


@pytest.fixture(scope="module")
def http(shared_inprocess: InProcessServer) -> Iterator[httpx.Client]:
    with shared_inprocess.client() as client:
        yield client


@pytest.fixture(scope="module")
def keys(http: httpx.Client) -> dict[str, str]:
    """One key per spec, created once (RSA-4096 key generation is slow)."""
    names: dict[str, str] = {}
    for spec in ALL_SPECS:
        name = f"ops/{spec}"
        key = create_key(http, name, spec)
        assert (key["spec"], key["state"], key["primary_version"]) == (spec, "enabled", 1)
        names[spec] = name
    return names


def _verify_independently(spec: str, pem: str, signature: bytes, message: bytes,
                          digest_hash: str | None = None) -> None:
    """Raise InvalidSignature unless pyca accepts the signature under the public key."""
    public: Any = serialization.load_pem_public_key(pem.encode())
    if spec in MESSAGE_ONLY:
        public.verify(signature, message)
        return
    hash_name = digest_hash or ECDSA_RSA[spec]
    algorithm = _HASHES[hash_name]()
    data: bytes = message
    hash_arg: Any = algorithm
    if digest_hash is not None:
        data = hashlib.new(hash_name, message).digest()
        hash_arg = Prehashed(algorithm)
    if spec.startswith("ecdsa"):
        public.verify(signature, data, ec.ECDSA(hash_arg))
    else:
        public.verify(signature, data,
                      padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size),
                      hash_arg)


# -- encryption ---------------------------------------------------------------------------


@pytest.mark.parametrize("spec", AEAD_SPECS)
def test_aead_encrypt_decrypt_reencrypt_datakey(http: httpx.Client, keys: dict[str, str],
                                                spec: str) -> None:
    name = keys[spec]
    context = {"tenant": "acme", "purpose": "e2e"}
    for plaintext in (b"", b"hello " + spec.encode(), bytes(range(256)) * 10):
        sealed = ok(http.post(f"/v1/keys/{name}/encrypt",
                              json={"plaintext": b64(plaintext), "context": context}))
        assert sealed["key_version"] == 1
        assert sealed["ciphertext"].startswith("kq1:")
        # context order does not matter; exact content does
        reordered = dict(reversed(list(context.items())))
        opened = ok(http.post("/v1/decrypt", json={"ciphertext": sealed["ciphertext"],
                                                  "context": reordered}))
        assert (unb64(opened["plaintext"]), opened["key"], opened["key_version"]) == (
            plaintext, name, 1)
        opened = ok(http.post(f"/v1/keys/{name}/decrypt",
                              json={"ciphertext": sealed["ciphertext"], "context": context}))
        assert unb64(opened["plaintext"]) == plaintext
        assert_error(http.post("/v1/decrypt", json={"ciphertext": sealed["ciphertext"]}),
                     400, "invalid_ciphertext")
        assert_error(http.post("/v1/decrypt", json={"ciphertext": sealed["ciphertext"],
                                                   "context": {**context, "tenant": "evil"}}),
                     400, "invalid_ciphertext")

    # two encryptions of the same plaintext differ (random nonces)
    once = ok(http.post(f"/v1/keys/{name}/encrypt", json={"plaintext": b64(b"same")}))
    twice = ok(http.post(f"/v1/keys/{name}/encrypt", json={"plaintext": b64(b"same")}))
    assert once["ciphertext"] != twice["ciphertext"]

    # reencrypt: same key, new context; and to another key
    moved = ok(http.post("/v1/reencrypt", json={
        "ciphertext": once["ciphertext"], "destination_context": {"new": "ctx"}}))
    assert "plaintext" not in moved
    assert moved["key_version"] == 1
    opened = ok(http.post("/v1/decrypt", json={"ciphertext": moved["ciphertext"],
                                              "context": {"new": "ctx"}}))
    assert unb64(opened["plaintext"]) == b"same"
    other = keys["aes-256-gcm"] if spec != "aes-256-gcm" else keys["chacha20-poly1305"]
    moved = ok(http.post("/v1/reencrypt", json={"ciphertext": once["ciphertext"],
                                               "destination_key": other}))
    opened = ok(http.post("/v1/decrypt", json={"ciphertext": moved["ciphertext"]}))
    assert (unb64(opened["plaintext"]), opened["key"]) == (b"same", other)

    # datakey: the wrapped copy decrypts (with its context) to the plaintext copy
    for bits in (128, 256, 512):
        data_key = ok(http.post(f"/v1/keys/{name}/datakey",
                                json={"bits": bits, "context": context}))
        raw = unb64(data_key["plaintext"])
        assert len(raw) == bits // 8
        opened = ok(http.post("/v1/decrypt", json={"ciphertext": data_key["ciphertext"],
                                                  "context": context}))
        assert unb64(opened["plaintext"]) == raw
    wrapped_only = ok(http.post(f"/v1/keys/{name}/datakey", json={"plaintext": False}))
    assert "plaintext" not in wrapped_only
    assert len(unb64(ok(http.post("/v1/decrypt", json={
        "ciphertext": wrapped_only["ciphertext"]}))["plaintext"])) == 32
    assert len(unb64(ok(http.post(f"/v1/keys/{name}/datakey"))["plaintext"])) == 32
    assert_error(http.post(f"/v1/keys/{name}/datakey", json={"bits": 100}),
                 400, "invalid_request")


# -- MACs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", MAC_SPECS)
def test_mac_and_verify_mac(http: httpx.Client, keys: dict[str, str], spec: str) -> None:
    name = keys[spec]
    size = {"hmac-sha224": 28, "hmac-sha256": 32, "hmac-sha384": 48, "hmac-sha512": 64}[spec]
    message = b64(b"message for " + spec.encode())
    tag = ok(http.post(f"/v1/keys/{name}/mac", json={"message": message}))["mac"]
    assert len(unb64(tag)) == size
    again = ok(http.post(f"/v1/keys/{name}/mac", json={"message": message}))["mac"]
    assert again == tag  # deterministic
    assert ok(http.post(f"/v1/keys/{name}/verify-mac",
                        json={"message": message, "mac": tag}))["valid"] is True
    wrong = bytearray(unb64(tag))
    wrong[0] ^= 1
    assert ok(http.post(f"/v1/keys/{name}/verify-mac",
                        json={"message": message, "mac": b64(bytes(wrong))}))["valid"] is False
    assert ok(http.post(f"/v1/keys/{name}/verify-mac",
                        json={"message": b64(b"other"), "mac": tag}))["valid"] is False
    assert ok(http.post(f"/v1/keys/{name}/verify-mac",
                        json={"message": message, "mac": b64(b"short")}))["valid"] is False


# -- signatures ---------------------------------------------------------------------------


@pytest.mark.parametrize("spec", list(ECDSA_RSA) + MESSAGE_ONLY)
def test_sign_verify_checked_by_pyca(http: httpx.Client, keys: dict[str, str],
                                     spec: str) -> None:
    name = keys[spec]
    public = ok(http.get(f"/v1/keys/{name}/public-key"))
    assert public["version"] == 1
    pem = public["public_key_pem"]
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    message = b"sign me: " + spec.encode()
    signed = ok(http.post(f"/v1/keys/{name}/sign", json={"message": b64(message)}))
    assert signed["key_version"] == 1
    signature = unb64(signed["signature"])
    _verify_independently(spec, pem, signature, message)
    with pytest.raises(InvalidSignature):
        _verify_independently(spec, pem, signature, message + b"!")
    assert ok(http.post(f"/v1/keys/{name}/verify", json={
        "message": b64(message), "signature": signed["signature"]}))["valid"] is True
    assert ok(http.post(f"/v1/keys/{name}/verify", json={
        "message": b64(message + b"!"), "signature": signed["signature"]}))["valid"] is False
    assert ok(http.post(f"/v1/keys/{name}/verify", json={
        "message": b64(message), "signature": b64(b"garbage")}))["valid"] is False

    if spec in MESSAGE_ONLY:
        digest = hashlib.sha256(message).digest()
        assert_error(http.post(f"/v1/keys/{name}/sign",
                               json={"digest": b64(digest), "hash": "sha256"}),
                     400, "invalid_request")
        return
    for hash_name in ("sha256", "sha384", "sha512"):
        digest = hashlib.new(hash_name, message).digest()
        signed = ok(http.post(f"/v1/keys/{name}/sign",
                              json={"digest": b64(digest), "hash": hash_name}))
        _verify_independently(spec, pem, unb64(signed["signature"]), message, hash_name)
        assert ok(http.post(f"/v1/keys/{name}/verify", json={
            "digest": b64(digest), "hash": hash_name,
            "signature": signed["signature"]}))["valid"] is True
    # a digest of the wrong length or without its hash is refused
    assert_error(http.post(f"/v1/keys/{name}/sign",
                           json={"digest": b64(b"\x00" * 20), "hash": "sha256"}),
                 400, "invalid_request")
    assert_error(http.post(f"/v1/keys/{name}/sign", json={"digest": b64(b"\x00" * 32)}),
                 400, "invalid_request")
    assert_error(http.post(f"/v1/keys/{name}/sign", json={
        "message": b64(message), "digest": b64(b"\x00" * 32), "hash": "sha256"}),
                 400, "invalid_request")


# -- KEMs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", KEM_SPECS)
def test_client_encapsulates_server_decapsulates(http: httpx.Client, keys: dict[str, str],
                                                 spec: str) -> None:
    name = keys[spec]
    pem = ok(http.get(f"/v1/keys/{name}/public-key"))["public_key_pem"]
    for _ in range(2):
        shared, encapsulation = encapsulate(spec, pem)
        answer = ok(http.post(f"/v1/keys/{name}/decapsulate",
                              json={"encapsulation": b64(encapsulation)}))
        assert unb64(answer["shared_secret"]) == shared
        assert answer["key_version"] == 1
    if spec != "x25519":
        # a corrupted ML-KEM ciphertext decapsulates (implicit rejection) to another secret
        bad = bytearray(encapsulation)
        bad[0] ^= 1
        answer = http.post(f"/v1/keys/{name}/decapsulate", json={"encapsulation": b64(bytes(bad))})
        if answer.status_code == 200:
            assert unb64(answer.json()["shared_secret"]) != shared
        else:
            assert_error(answer, 400, "invalid_ciphertext")
    assert_error(http.post(f"/v1/keys/{name}/decapsulate",
                           json={"encapsulation": b64(b"short")}),
                 400, "invalid_ciphertext")


# -- wrong purpose, symmetric public key ----------------------------------------------------


@pytest.mark.parametrize(("spec", "path", "body"), [
    ("ed25519", "encrypt", {"plaintext": ""}),
    ("ecdsa-p256", "datakey", {}),
    ("hmac-sha256", "encrypt", {"plaintext": ""}),
    ("aes-256-gcm", "sign", {"message": ""}),
    ("aes-256-gcm", "mac", {"message": ""}),
    ("ml-kem-768", "sign", {"message": ""}),
    ("ed25519", "mac", {"message": ""}),
    ("aes-256-gcm", "decapsulate", {"encapsulation": b64(b"x" * 32)}),
    ("ed25519", "verify-mac", {"message": "", "mac": ""}),
])
def test_wrong_purpose_is_conflict(http: httpx.Client, keys: dict[str, str], spec: str,
                                   path: str, body: dict) -> None:
    assert_error(http.post(f"/v1/keys/{keys[spec]}/{path}", json=body), 409, "conflict")


def test_symmetric_key_has_no_public_key(http: httpx.Client, keys: dict[str, str]) -> None:
    assert_error(http.get(f"/v1/keys/{keys['aes-256-gcm']}/public-key"), 409, "conflict")


# -- batches ------------------------------------------------------------------------------


def _results(answer: httpx.Response, count: int) -> list[dict]:
    results = ok(answer)["results"]
    assert len(results) == count
    return results  # type: ignore[no-any-return]


def test_batch_forms_with_mixed_items(http: httpx.Client, keys: dict[str, str]) -> None:
    aes = keys["aes-256-gcm"]
    results = _results(http.post(f"/v1/keys/{aes}/encrypt", json={"batch": [
        {"plaintext": b64(b"one")},
        {"plaintext": "%%%not base64"},
        {"plaintext": b64(b"three"), "context": {"a": "b"}},
        {"plaintext": b64(b"x"), "bogus": 1},
        "not an object",
    ]}), 5)
    assert "ciphertext" in results[0] and "ciphertext" in results[2]
    for bad in (results[1], results[3], results[4]):
        assert bad["error"]["code"] == "invalid_request"
    one, three = results[0]["ciphertext"], results[2]["ciphertext"]
    other = ok(http.post(f"/v1/keys/{keys['xchacha20-poly1305']}/encrypt",
                         json={"plaintext": b64(b"other")}))["ciphertext"]

    results = _results(http.post("/v1/decrypt", json={"batch": [
        {"ciphertext": one}, {"ciphertext": three}, {"ciphertext": three, "context": {"a": "b"}},
        {"ciphertext": "kq1:garbage"}, {"ciphertext": other}]}), 5)
    assert unb64(results[0]["plaintext"]) == b"one"
    assert results[1]["error"]["code"] == "invalid_ciphertext"
    assert unb64(results[2]["plaintext"]) == b"three"
    assert results[3]["error"]["code"] == "invalid_ciphertext"
    assert results[4]["key"] == keys["xchacha20-poly1305"]

    results = _results(http.post(f"/v1/keys/{aes}/decrypt", json={"batch": [
        {"ciphertext": one}, {"ciphertext": other}]}), 2)
    assert unb64(results[0]["plaintext"]) == b"one"
    assert results[1]["error"]["code"] == "invalid_ciphertext"

    results = _results(http.post("/v1/reencrypt", json={"batch": [
        {"ciphertext": one}, {"ciphertext": one, "destination_key": "no/such/key"},
        {"ciphertext": "nope"}]}), 3)
    assert "ciphertext" in results[0]
    assert results[1]["error"]["code"] == "not_found"
    assert results[2]["error"]["code"] == "invalid_ciphertext"

    results = _results(http.post(f"/v1/keys/{aes}/datakey", json={"batch": [
        {}, {"bits": 7}, {"bits": 128, "plaintext": False}]}), 3)
    assert len(unb64(results[0]["plaintext"])) == 32
    assert results[1]["error"]["code"] == "invalid_request"
    assert "plaintext" not in results[2] and "ciphertext" in results[2]

    ed = keys["ed25519"]
    results = _results(http.post(f"/v1/keys/{ed}/sign", json={"batch": [
        {"message": b64(b"a")}, {"digest": b64(b"\x00" * 32), "hash": "sha256"},
        {"message": b64(b"b")}]}), 3)
    assert results[1]["error"]["code"] == "invalid_request"
    results = _results(http.post(f"/v1/keys/{ed}/verify", json={"batch": [
        {"message": b64(b"a"), "signature": results[0]["signature"]},
        {"message": b64(b"a"), "signature": results[2]["signature"]},
        {"message": b64(b"a")}]}), 3)
    assert results[0]["valid"] is True and results[1]["valid"] is False
    assert results[2]["error"]["code"] == "invalid_request"

    hm = keys["hmac-sha512"]
    results = _results(http.post(f"/v1/keys/{hm}/mac", json={"batch": [
        {"message": b64(b"m1")}, {"message": 5}, {"message": b64(b"m2")}]}), 3)
    assert results[1]["error"]["code"] == "invalid_request"
    results = _results(http.post(f"/v1/keys/{hm}/verify-mac", json={"batch": [
        {"message": b64(b"m1"), "mac": results[0]["mac"]},
        {"message": b64(b"m1"), "mac": results[2]["mac"]},
        {"message": b64(b"m1")}]}), 3)
    assert (results[0]["valid"], results[1]["valid"]) == (True, False)
    assert results[2]["error"]["code"] == "invalid_request"

    kem = keys["ml-kem-768"]
    pem = ok(http.get(f"/v1/keys/{kem}/public-key"))["public_key_pem"]
    shared, enc = encapsulate("ml-kem-768", pem)
    results = _results(http.post(f"/v1/keys/{kem}/decapsulate", json={"batch": [
        {"encapsulation": b64(enc)}, {"encapsulation": "!!"}]}), 2)
    assert unb64(results[0]["shared_secret"]) == shared
    assert results[1]["error"]["code"] == "invalid_request"

    results = _results(http.post("/v1/random", json={"batch": [
        {"bytes": 16}, {"bytes": 0}, {"bytes": 1024}]}), 3)
    assert len(unb64(results[0]["random"])) == 16
    assert results[1]["error"]["code"] == "invalid_request"
    assert len(unb64(results[2]["random"])) == 1024


def test_batch_shape_errors(http: httpx.Client, keys: dict[str, str]) -> None:
    aes = keys["aes-256-gcm"]
    assert_error(http.post(f"/v1/keys/{aes}/encrypt", json={"batch": []}),
                 400, "invalid_request")
    assert_error(http.post(f"/v1/keys/{aes}/encrypt", json={"batch": {"plaintext": ""}}),
                 400, "invalid_request")
    assert_error(http.post(f"/v1/keys/{aes}/encrypt",
                           json={"batch": [{"plaintext": ""}], "plaintext": ""}),
                 400, "invalid_request")


# -- random -------------------------------------------------------------------------------


def test_random_bounds(http: httpx.Client) -> None:
    for count in (1, 32, 1024):
        assert len(unb64(ok(http.post("/v1/random", json={"bytes": count}))["random"])) == count
    first = ok(http.post("/v1/random", json={"bytes": 32}))["random"]
    assert first != ok(http.post("/v1/random", json={"bytes": 32}))["random"]
    for bad in (0, -1, 1025, 1.5, "8", True, None):
        assert_error(http.post("/v1/random", json={"bytes": bad}), 400, "invalid_request")
    assert_error(http.post("/v1/random", json={}), 400, "invalid_request")


def test_key_listing_shows_every_spec(http: httpx.Client, keys: dict[str, str]) -> None:
    listed = ok(http.get("/v1/keys", params={"prefix": "ops/", "limit": 1000}))["keys"]
    assert {k["spec"] for k in listed} >= set(ALL_SPECS)
    fresh = unique("ops-extra")
    key = create_key(http, fresh, "x25519", purpose="kem")
    assert key["purpose"] == "kem"
    assert_error(http.post("/v1/keys", json={"name": unique("p"), "spec": "aes-256-gcm",
                                             "purpose": "sign"}), 400, "invalid_request")
