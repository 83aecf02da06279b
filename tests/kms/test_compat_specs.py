"""RSA_2048, ECC_NIST_P521, HMAC_224 and RSASSA_PKCS1_V1_5 through boto3 against a live
server, every signature and MAC checked with the ``cryptography`` package, and
ListKeyRotations paged with Limit/Marker as boto3's paginator drives it."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from tests.kms.live import LiveServer

_HASH = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}
RSA_ALGORITHMS = ["RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512",
                  "RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384",
                  "RSASSA_PKCS1_V1_5_SHA_512"]


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


@pytest.fixture(scope="module")
def rsa2048(kms: Any) -> str:
    made = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    assert made["KeySpec"] == "RSA_2048"
    assert made["SigningAlgorithms"] == RSA_ALGORITHMS
    return str(made["KeyId"])


def test_rsa_2048_is_a_native_rsa_2048_key_with_its_public_key(live: LiveServer, kms: Any,
                                                               rsa2048: str) -> None:
    with live.http() as http:
        assert http.get(f"/v1/keys/kms/{rsa2048}").json()["spec"] == "rsa-2048"
    answer = kms.get_public_key(KeyId=rsa2048)
    assert answer["KeySpec"] == "RSA_2048" and answer["SigningAlgorithms"] == RSA_ALGORITHMS
    public = serialization.load_der_public_key(answer["PublicKey"])
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048


@pytest.mark.parametrize("algorithm", RSA_ALGORITHMS)
@pytest.mark.parametrize("message_type", ["RAW", "DIGEST"])
def test_rsa_signatures_checked_by_pyca(kms: Any, rsa2048: str, algorithm: str,
                                        message_type: str) -> None:
    chosen = _HASH[algorithm[-3:]]
    message = b"invoice 7"
    sent = message if message_type == "RAW" else hashlib.new(chosen.name, message).digest()
    signature = kms.sign(KeyId=rsa2048, Message=sent, MessageType=message_type,
                         SigningAlgorithm=algorithm)["Signature"]
    public = serialization.load_der_public_key(kms.get_public_key(KeyId=rsa2048)["PublicKey"])
    assert isinstance(public, rsa.RSAPublicKey)
    pad: padding.AsymmetricPadding = padding.PKCS1v15() if "PKCS1" in algorithm else \
        padding.PSS(mgf=padding.MGF1(chosen), salt_length=chosen.digest_size)
    public.verify(signature, message, pad, chosen)
    assert kms.verify(KeyId=rsa2048, Message=sent, MessageType=message_type,
                      Signature=signature, SigningAlgorithm=algorithm)["SignatureValid"]


def test_a_pkcs1_signature_is_not_a_pss_signature(kms: Any, rsa2048: str) -> None:
    signature = kms.sign(KeyId=rsa2048, Message=b"m",
                         SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256")["Signature"]
    with pytest.raises(ClientError) as refused:
        kms.verify(KeyId=rsa2048, Message=b"m", Signature=signature,
                   SigningAlgorithm="RSASSA_PSS_SHA_256")
    assert _code(refused) == "KMSInvalidSignatureException"


def test_pkcs1_on_an_ec_key_is_invalid_key_usage(kms: Any) -> None:
    key_id = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    with pytest.raises(ClientError) as refused:
        kms.sign(KeyId=key_id["KeyMetadata"]["KeyId"], Message=b"m",
                 SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256")
    assert _code(refused) == "InvalidKeyUsageException"


def test_p521_signs_ecdsa_sha_512(live: LiveServer, kms: Any) -> None:
    made = kms.create_key(KeySpec="ECC_NIST_P521", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    assert made["SigningAlgorithms"] == ["ECDSA_SHA_512"]
    key_id = made["KeyId"]
    with live.http() as http:
        assert http.get(f"/v1/keys/kms/{key_id}").json()["spec"] == "ecdsa-p521"
    public = serialization.load_der_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert isinstance(public.curve, ec.SECP521R1)
    for message_type, sent in (("RAW", b"m"), ("DIGEST", hashlib.sha512(b"m").digest())):
        signature = kms.sign(KeyId=key_id, Message=sent, MessageType=message_type,
                             SigningAlgorithm="ECDSA_SHA_512")["Signature"]
        public.verify(signature, b"m", ec.ECDSA(hashes.SHA512()))
    with pytest.raises(ClientError) as refused:
        kms.sign(KeyId=key_id, Message=b"m", SigningAlgorithm="ECDSA_SHA_384")
    assert _code(refused) == "InvalidKeyUsageException"


def test_hmac_224_is_a_native_hmac_sha224_key_on_both_fronts(live: LiveServer, kms: Any) -> None:
    made = kms.create_key(KeySpec="HMAC_224", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]
    assert made["MacAlgorithms"] == ["HMAC_SHA_224"]
    tag = kms.generate_mac(KeyId=made["KeyId"], Message=b"m",
                           MacAlgorithm="HMAC_SHA_224")["Mac"]
    assert len(tag) == 28
    assert kms.verify_mac(KeyId=made["KeyId"], Message=b"m", Mac=tag,
                          MacAlgorithm="HMAC_SHA_224")["MacValid"]
    with pytest.raises(ClientError) as refused:
        kms.generate_mac(KeyId=made["KeyId"], Message=b"m", MacAlgorithm="HMAC_SHA_256")
    assert _code(refused) == "InvalidKeyUsageException"
    # the same tag natively: one key, two front ends
    with live.http() as http:
        native = http.post(f"/v1/keys/kms/{made['KeyId']}/verify-mac", json={
            "message": base64.b64encode(b"m").decode(), "mac": base64.b64encode(tag).decode()})
        assert native.json()["valid"] is True
        assert http.get(f"/v1/keys/kms/{made['KeyId']}").json()["spec"] == "hmac-sha224"


def test_list_key_rotations_pages_with_limit_and_marker(kms: Any) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    for _ in range(5):
        kms.rotate_key_on_demand(KeyId=key_id)
    first = kms.list_key_rotations(KeyId=key_id, Limit=2)
    assert len(first["Rotations"]) == 2 and first["Truncated"] is True
    second = kms.list_key_rotations(KeyId=key_id, Limit=2, Marker=first["NextMarker"])
    everything = kms.list_key_rotations(KeyId=key_id)
    assert everything["Truncated"] is False and len(everything["Rotations"]) == 5
    assert first["Rotations"] + second["Rotations"] == everything["Rotations"][:4]
    paged = [rotation for page in kms.get_paginator("list_key_rotations").paginate(
        KeyId=key_id, PaginationConfig={"PageSize": 2}) for rotation in page["Rotations"]]
    assert len(paged) == 5
    assert paged == everything["Rotations"]
    last = kms.list_key_rotations(KeyId=key_id, Limit=5)
    assert last["Truncated"] is False and "NextMarker" not in last
    with pytest.raises(ClientError) as refused:
        kms.list_key_rotations(KeyId=key_id, Marker="not-ours")
    assert _code(refused) == "ValidationException"
