"""KMS cryptography with boto3 against a live server: blobs are keyquorum ciphertexts.

Encrypt via KMS decrypts via the native API and the other way round; contexts bind the
same way; signatures, public keys and MACs check out with the ``cryptography`` package.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from tests.kms.live import LiveServer

pytestmark = pytest.mark.postgresql


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


@pytest.fixture(scope="module")
def aes(kms: Any) -> str:
    return str(kms.create_key(Description="crypto tests")["KeyMetadata"]["KeyId"])


def test_encrypt_and_decrypt_with_and_without_key_id(kms: Any, aes: str) -> None:
    sealed = kms.encrypt(KeyId=aes, Plaintext=b"card 4111", EncryptionContext={"t": "acme"})
    assert sealed["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    assert sealed["KeyId"].endswith(f":key/{aes}")
    blob = sealed["CiphertextBlob"]
    assert blob.startswith(b"kq1:")
    for extra in ({}, {"KeyId": aes}, {"KeyId": f"alias/kms/{aes}"}):
        opened = kms.decrypt(CiphertextBlob=blob, EncryptionContext={"t": "acme"}, **extra)
        assert opened["Plaintext"] == b"card 4111"
        assert opened["KeyId"] == sealed["KeyId"]


def test_a_wrong_context_or_a_changed_blob_is_an_invalid_ciphertext(kms: Any, aes: str) -> None:
    blob = kms.encrypt(KeyId=aes, Plaintext=b"x", EncryptionContext={"t": "a"})["CiphertextBlob"]
    for bad in ({"CiphertextBlob": blob, "EncryptionContext": {"t": "b"}},
                {"CiphertextBlob": blob},
                {"CiphertextBlob": blob[:-3] + b"AAA", "EncryptionContext": {"t": "a"}},
                {"CiphertextBlob": b"garbage that is no ciphertext"}):
        with pytest.raises(ClientError) as refused:
            kms.decrypt(**bad)
        assert _code(refused) == "InvalidCiphertextException"


def test_decrypt_with_another_key_id_is_incorrect_key(kms: Any, aes: str) -> None:
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=aes, Plaintext=b"x")["CiphertextBlob"]
    with pytest.raises(ClientError) as refused:
        kms.decrypt(CiphertextBlob=blob, KeyId=other)
    assert _code(refused) == "IncorrectKeyException"


def test_ciphertexts_move_between_kms_and_the_native_api(
        live: LiveServer, kms: Any, aes: str) -> None:
    blob = kms.encrypt(KeyId=aes, Plaintext=b"to native", EncryptionContext={"k": "v"})
    with live.http() as http:
        native = http.post("/v1/decrypt", json={
            "ciphertext": blob["CiphertextBlob"].decode(), "context": {"k": "v"}})
        assert native.status_code == 200, native.text
        assert base64.b64decode(native.json()["plaintext"]) == b"to native"
        made = http.post(f"/v1/keys/kms/{aes}/encrypt", json={
            "plaintext": base64.b64encode(b"from native").decode(), "context": {"k": "v"}})
        text = made.json()["ciphertext"]
    opened = kms.decrypt(CiphertextBlob=text.encode(), EncryptionContext={"k": "v"})
    assert opened["Plaintext"] == b"from native"
    binary = base64.urlsafe_b64decode(text[len("kq1:"):] + "==")
    assert kms.decrypt(CiphertextBlob=binary,
                       EncryptionContext={"k": "v"})["Plaintext"] == b"from native"


def test_plaintexts_over_4096_bytes_are_refused(live: LiveServer, root_key: dict[str, Any],
                                                aes: str) -> None:
    loose = live.kms(root_key, validate=False)
    assert loose.encrypt(KeyId=aes, Plaintext=b"x" * 4096)["CiphertextBlob"]
    with pytest.raises(ClientError) as refused:
        loose.encrypt(KeyId=aes, Plaintext=b"x" * 4097)
    assert _code(refused) == "ValidationException"


def test_reencrypt_moves_to_another_key_and_context(kms: Any, aes: str) -> None:
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=aes, Plaintext=b"moving", EncryptionContext={"a": "1"})
    moved = kms.re_encrypt(CiphertextBlob=blob["CiphertextBlob"],
                           SourceEncryptionContext={"a": "1"}, DestinationKeyId=other,
                           DestinationEncryptionContext={"b": "2"})
    assert moved["SourceKeyId"].endswith(aes) and moved["KeyId"].endswith(other)
    opened = kms.decrypt(CiphertextBlob=moved["CiphertextBlob"], EncryptionContext={"b": "2"})
    assert opened["Plaintext"] == b"moving"
    with pytest.raises(ClientError) as refused:
        kms.re_encrypt(CiphertextBlob=blob["CiphertextBlob"], SourceKeyId=other,
                       SourceEncryptionContext={"a": "1"}, DestinationKeyId=other)
    assert _code(refused) == "IncorrectKeyException"


def test_data_keys(kms: Any, aes: str) -> None:
    made = kms.generate_data_key(KeyId=aes, KeySpec="AES_256", EncryptionContext={"f": "1"})
    assert len(made["Plaintext"]) == 32
    opened = kms.decrypt(CiphertextBlob=made["CiphertextBlob"], EncryptionContext={"f": "1"})
    assert opened["Plaintext"] == made["Plaintext"]
    assert len(kms.generate_data_key(KeyId=aes, NumberOfBytes=64)["Plaintext"]) == 64
    bare = kms.generate_data_key_without_plaintext(KeyId=aes, KeySpec="AES_128")
    assert "Plaintext" not in bare
    assert len(kms.decrypt(CiphertextBlob=bare["CiphertextBlob"])["Plaintext"]) == 16


@pytest.mark.parametrize("pair_spec", ["ECC_NIST_P256", "RSA_2048"])
def test_data_key_pairs(kms: Any, aes: str, pair_spec: str) -> None:
    made = kms.generate_data_key_pair(KeyId=aes, KeyPairSpec=pair_spec)
    private = serialization.load_der_private_key(made["PrivateKeyPlaintext"], None)
    public = serialization.load_der_public_key(made["PublicKey"])
    assert private.public_key().public_numbers() == public.public_numbers()  # type: ignore[union-attr]
    opened = kms.decrypt(CiphertextBlob=made["PrivateKeyCiphertextBlob"])["Plaintext"]
    assert opened == made["PrivateKeyPlaintext"]
    bare = kms.generate_data_key_pair_without_plaintext(KeyId=aes, KeyPairSpec=pair_spec)
    assert "PrivateKeyPlaintext" not in bare and bare["KeyPairSpec"] == pair_spec


def test_random(kms: Any) -> None:
    assert len(kms.generate_random(NumberOfBytes=48)["Plaintext"]) == 48


def test_ecdsa_sign_verify_raw_and_digest_and_public_key(kms: Any) -> None:
    key_id = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    key_id = key_id["KeyId"]
    message = b"release 1.2.3"
    raw = kms.sign(KeyId=key_id, Message=message, MessageType="RAW",
                   SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    digest = hashlib.sha256(message).digest()
    pre = kms.sign(KeyId=key_id, Message=digest, MessageType="DIGEST",
                   SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    public_der = kms.get_public_key(KeyId=key_id)["PublicKey"]
    public = serialization.load_der_public_key(public_der)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    for signature in (raw, pre):
        public.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        assert kms.verify(KeyId=key_id, Message=message, Signature=signature,
                          SigningAlgorithm="ECDSA_SHA_256")["SignatureValid"] is True
    with pytest.raises(ClientError) as refused:
        kms.verify(KeyId=key_id, Message=b"other", Signature=raw,
                   SigningAlgorithm="ECDSA_SHA_256")
    assert _code(refused) == "KMSInvalidSignatureException"
    with pytest.raises(ClientError) as refused:
        kms.sign(KeyId=key_id, Message=message, SigningAlgorithm="ECDSA_SHA_384")
    assert _code(refused) == "InvalidKeyUsageException"


def test_rsa_pss_ed25519_and_ml_dsa_signatures(kms: Any) -> None:
    rsa_key = kms.create_key(KeySpec="RSA_3072", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    signature = kms.sign(KeyId=rsa_key, Message=b"m",
                         SigningAlgorithm="RSASSA_PSS_SHA_384")["Signature"]
    public = serialization.load_der_public_key(kms.get_public_key(KeyId=rsa_key)["PublicKey"])
    public.verify(signature, b"m", padding.PSS(mgf=padding.MGF1(hashes.SHA384()),  # type: ignore[call-arg, union-attr]
                                               salt_length=48), hashes.SHA384())
    for spec, algorithm in (("ECC_NIST_EDWARDS25519", "ED25519_SHA_512"),
                            ("ML_DSA_65", "ML_DSA_SHAKE_256")):
        key_id = kms.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
        signed = kms.sign(KeyId=key_id, Message=b"m", SigningAlgorithm=algorithm)
        assert kms.verify(KeyId=key_id, Message=b"m", Signature=signed["Signature"],
                          SigningAlgorithm=algorithm)["SignatureValid"] is True
        assert kms.get_public_key(KeyId=key_id)["KeySpec"] == spec


def test_macs(kms: Any) -> None:
    key_id = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    key_id = key_id["KeyMetadata"]["KeyId"]
    tag = kms.generate_mac(KeyId=key_id, Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"]
    assert kms.verify_mac(KeyId=key_id, Message=b"m", Mac=tag,
                          MacAlgorithm="HMAC_SHA_256")["MacValid"] is True
    with pytest.raises(ClientError) as refused:
        kms.verify_mac(KeyId=key_id, Message=b"n", Mac=tag, MacAlgorithm="HMAC_SHA_256")
    assert _code(refused) == "KMSInvalidMacException"
    with pytest.raises(ClientError) as refused:
        kms.generate_mac(KeyId=key_id, Message=b"m", MacAlgorithm="HMAC_SHA_512")
    assert _code(refused) == "InvalidKeyUsageException"


def test_wrong_key_usage_is_refused_and_nothing_is_made(kms: Any, aes: str) -> None:
    signing = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    signing_id = signing["KeyMetadata"]["KeyId"]
    calls = [lambda: kms.encrypt(KeyId=signing_id, Plaintext=b"x"),
             lambda: kms.generate_data_key(KeyId=signing_id, KeySpec="AES_256"),
             lambda: kms.sign(KeyId=aes, Message=b"x", SigningAlgorithm="ECDSA_SHA_256"),
             lambda: kms.generate_mac(KeyId=aes, Message=b"x", MacAlgorithm="HMAC_SHA_256")]
    for call in calls:
        with pytest.raises(ClientError) as refused:
            call()
        assert _code(refused) == "InvalidKeyUsageException"
    with pytest.raises(ClientError) as refused:
        kms.get_public_key(KeyId=aes)
    assert _code(refused) == "UnsupportedOperationException"


def test_ml_dsa_with_an_external_mu_makes_an_ordinary_signature(kms: Any) -> None:
    """EXTERNAL_MU: the client computes FIPS 204's mu = SHAKE256(tr || 0 || 0 || M) with
    tr = SHAKE256(public key); the signature verifies against the message itself."""
    from cryptography.hazmat.primitives.asymmetric import mldsa

    key_id = kms.create_key(KeySpec="ML_DSA_44", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    key_id = key_id["KeyId"]
    public = serialization.load_der_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])
    assert isinstance(public, mldsa.MLDSA44PublicKey)
    message = b"a large document, hashed where it lives"
    tr = hashlib.shake_256(public.public_bytes_raw()).digest(64)
    mu = hashlib.shake_256(tr + b"\x00\x00" + message).digest(64)
    signature = kms.sign(KeyId=key_id, Message=mu, MessageType="EXTERNAL_MU",
                         SigningAlgorithm="ML_DSA_SHAKE_256")["Signature"]
    public.verify(signature, message)
    assert kms.verify(KeyId=key_id, Message=message, Signature=signature,
                      SigningAlgorithm="ML_DSA_SHAKE_256")["SignatureValid"] is True
    assert kms.verify(KeyId=key_id, Message=mu, MessageType="EXTERNAL_MU", Signature=signature,
                      SigningAlgorithm="ML_DSA_SHAKE_256")["SignatureValid"] is True
    with pytest.raises(ClientError) as refused:
        kms.sign(KeyId=key_id, Message=mu[:32], MessageType="EXTERNAL_MU",
                 SigningAlgorithm="ML_DSA_SHAKE_256")
    assert _code(refused) == "ValidationException"
