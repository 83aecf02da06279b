"""RSA encryption keys through boto3 against a live server: CreateKey RSA_* with
ENCRYPT_DECRYPT, client-side RSAES-OAEP encryption to GetPublicKey's key decrypted by
Decrypt, server-side Encrypt, and AWS's refusals (no context, no data keys, the algorithm
must match the key)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from tests.kms.live import LiveServer

OAEP = {"RSAES_OAEP_SHA_1": hashes.SHA1(), "RSAES_OAEP_SHA_256": hashes.SHA256()}


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


@pytest.fixture(scope="module")
def rsa_key(kms: Any) -> str:
    made = kms.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    assert made["KeyUsage"] == "ENCRYPT_DECRYPT" and made["KeySpec"] == "RSA_2048"
    assert made["EncryptionAlgorithms"] == list(OAEP)
    assert "SigningAlgorithms" not in made
    return str(made["KeyId"])


def test_the_native_key_is_an_rsa_encryption_key(live: LiveServer, kms: Any,
                                                 rsa_key: str) -> None:
    with live.http() as http:
        native = http.get(f"/v1/keys/kms/{rsa_key}").json()
    assert (native["spec"], native["purpose"]) == ("rsa-2048", "encrypt")
    answer = kms.get_public_key(KeyId=rsa_key)
    assert answer["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert answer["EncryptionAlgorithms"] == list(OAEP)


@pytest.mark.parametrize("algorithm", list(OAEP))
def test_client_side_encryption_decrypts_server_side(kms: Any, rsa_key: str,
                                                     algorithm: str) -> None:
    public = serialization.load_der_public_key(kms.get_public_key(KeyId=rsa_key)["PublicKey"])
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048
    chosen = OAEP[algorithm]
    block = public.encrypt(b"api secret", padding.OAEP(mgf=padding.MGF1(chosen),
                                                       algorithm=chosen, label=None))
    answer = kms.decrypt(KeyId=rsa_key, CiphertextBlob=block, EncryptionAlgorithm=algorithm)
    assert answer["Plaintext"] == b"api secret"
    assert answer["EncryptionAlgorithm"] == algorithm
    sealed = kms.encrypt(KeyId=rsa_key, Plaintext=b"server made", EncryptionAlgorithm=algorithm)
    assert len(sealed["CiphertextBlob"]) == 256
    assert kms.decrypt(KeyId=rsa_key, CiphertextBlob=sealed["CiphertextBlob"],
                       EncryptionAlgorithm=algorithm)["Plaintext"] == b"server made"


def test_aws_refusals_for_rsa_encryption(kms: Any, rsa_key: str) -> None:
    block = kms.encrypt(KeyId=rsa_key, Plaintext=b"x",
                        EncryptionAlgorithm="RSAES_OAEP_SHA_256")["CiphertextBlob"]
    with pytest.raises(ClientError) as refused:  # the hash is part of the scheme
        kms.decrypt(KeyId=rsa_key, CiphertextBlob=block, EncryptionAlgorithm="RSAES_OAEP_SHA_1")
    assert _code(refused) == "InvalidCiphertextException"
    with pytest.raises(ClientError) as refused:
        kms.decrypt(CiphertextBlob=block, EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert _code(refused) == "ValidationException"
    with pytest.raises(ClientError) as refused:
        kms.encrypt(KeyId=rsa_key, Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_256",
                    EncryptionContext={"a": "b"})
    assert _code(refused) == "ValidationException"
    with pytest.raises(ClientError) as refused:
        kms.encrypt(KeyId=rsa_key, Plaintext=b"x")  # SYMMETRIC_DEFAULT
    assert _code(refused) == "InvalidKeyUsageException"
    with pytest.raises(ClientError) as refused:
        kms.encrypt(KeyId=rsa_key, Plaintext=bytes(191), EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert _code(refused) == "ValidationException"
    with pytest.raises(ClientError) as refused:
        kms.generate_data_key(KeyId=rsa_key, KeySpec="AES_256")
    assert _code(refused) == "InvalidKeyUsageException"
    aes = kms.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as refused:
        kms.encrypt(KeyId=aes, Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert _code(refused) == "InvalidKeyUsageException"
    signing = kms.create_key(KeySpec="RSA_3072", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    with pytest.raises(ClientError) as refused:
        kms.encrypt(KeyId=signing["KeyId"], Plaintext=b"x",
                    EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert _code(refused) == "InvalidKeyUsageException"


def test_a_disabled_rsa_key_refuses_as_aws(kms: Any) -> None:
    key_id = kms.create_key(KeySpec="RSA_3072", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"]
    block = kms.encrypt(KeyId=key_id, Plaintext=b"x",
                        EncryptionAlgorithm="RSAES_OAEP_SHA_1")["CiphertextBlob"]
    kms.disable_key(KeyId=key_id)
    with pytest.raises(ClientError) as refused:
        kms.decrypt(KeyId=key_id, CiphertextBlob=block, EncryptionAlgorithm="RSAES_OAEP_SHA_1")
    assert _code(refused) == "DisabledException"
