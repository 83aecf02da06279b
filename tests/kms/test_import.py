"""Bring your own key over KMS: CreateKey(Origin=EXTERNAL) → GetParametersForImport →
ImportKeyMaterial, with RSAES_OAEP_SHA_1/SHA_256 and RSA_AES_KEY_WRAP_SHA_256 wrapping;
tokens bound to one key and one wrapping key pair; the material really is the one used."""

from __future__ import annotations

import os
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding
from tests.kms.live import LiveServer

from keyquorum.crypto.aead import AeadKey
from keyquorum.keys.ciphertext import open_with, parse_ciphertext

NO_EXPIRY = "KEY_MATERIAL_DOES_NOT_EXPIRE"
"""AWS's default ExpirationModel is KEY_MATERIAL_EXPIRES, which needs a ValidTo."""


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def _wrap(public_der: bytes, material: bytes, algorithm: str) -> bytes:
    public = serialization.load_der_public_key(public_der)
    assert isinstance(public, rsa.RSAPublicKey)
    digest = hashes.SHA1() if algorithm.endswith("SHA_1") else hashes.SHA256()
    oaep = padding.OAEP(mgf=padding.MGF1(digest), algorithm=digest, label=None)
    if algorithm.startswith("RSAES_OAEP"):
        return public.encrypt(material, oaep)
    ephemeral = os.urandom(32)
    return public.encrypt(ephemeral, oaep) + aes_key_wrap_with_padding(ephemeral, material)


def _external(kms: Any, **extra: Any) -> str:
    made = kms.create_key(Origin="EXTERNAL", Description="byok", **extra)["KeyMetadata"]
    assert (made["KeyState"], made["Origin"], made["Enabled"]) == ("PendingImport",
                                                                   "EXTERNAL", False)
    return str(made["KeyId"])


@pytest.mark.parametrize("algorithm", ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256",
                                       "RSA_AES_KEY_WRAP_SHA_256"])
def test_imported_material_is_the_key(live: LiveServer, kms: Any, algorithm: str) -> None:
    key_id = _external(kms)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingImport"
    assert key_id in {k["KeyId"] for k in kms.list_keys(Limit=1000)["Keys"]}
    with pytest.raises(ClientError) as refused:
        kms.encrypt(KeyId=key_id, Plaintext=b"x")
    assert _code(refused) == "KMSInvalidStateException"
    params = kms.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm=algorithm,
                                           WrappingKeySpec="RSA_2048")
    assert params["KeyId"].endswith(key_id)
    material = os.urandom(32)
    kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"],
                            EncryptedKeyMaterial=_wrap(params["PublicKey"], material,
                                                       algorithm),
                            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (meta["KeyState"], meta["Origin"]) == ("Enabled", "EXTERNAL")
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"mine", EncryptionContext={"a": "b"})
    header, header_bytes, body = parse_ciphertext(blob["CiphertextBlob"].decode())
    assert open_with(AeadKey("aes-256-gcm", material), header, header_bytes, body,
                     {"a": "b"}) == b"mine"
    with live.http() as http:
        assert http.get(f"/v1/keys/kms/{key_id}").json()["origin"] == "imported"
    with pytest.raises(ClientError) as again:
        kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"],
                                EncryptedKeyMaterial=_wrap(params["PublicKey"], material,
                                                           algorithm),
                                ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    assert _code(again) == "KMSInvalidStateException"


def test_a_token_opens_for_its_own_key_only_and_material_must_fit(kms: Any) -> None:
    first, second = _external(kms), _external(kms)
    params = kms.get_parameters_for_import(KeyId=first, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                           WrappingKeySpec="RSA_3072")
    wrapped = _wrap(params["PublicKey"], os.urandom(32), "RSAES_OAEP_SHA_256")
    with pytest.raises(ClientError) as refused:
        kms.import_key_material(KeyId=second, ImportToken=params["ImportToken"],
                                EncryptedKeyMaterial=wrapped, ExpirationModel=NO_EXPIRY)
    assert _code(refused) == "InvalidImportTokenException"
    other = kms.get_parameters_for_import(KeyId=first, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                          WrappingKeySpec="RSA_2048")
    with pytest.raises(ClientError) as refused:  # wrapped for another wrapping key pair
        kms.import_key_material(KeyId=first, ImportToken=other["ImportToken"],
                                EncryptedKeyMaterial=wrapped, ExpirationModel=NO_EXPIRY)
    assert _code(refused) == "InvalidCiphertextException"
    short = _wrap(params["PublicKey"], os.urandom(16), "RSAES_OAEP_SHA_256")
    with pytest.raises(ClientError) as refused:
        kms.import_key_material(KeyId=first, ImportToken=params["ImportToken"],
                                EncryptedKeyMaterial=short, ExpirationModel=NO_EXPIRY)
    assert _code(refused) == "IncorrectKeyMaterialException"
    with pytest.raises(ClientError) as refused:
        kms.import_key_material(KeyId=first, ImportToken=params["ImportToken"],
                                EncryptedKeyMaterial=wrapped, ValidTo=4102444800,
                                ExpirationModel="KEY_MATERIAL_EXPIRES")
    assert _code(refused) == "ValidationException"  # more than 365 days ahead (AWS's bound)
    assert kms.describe_key(KeyId=first)["KeyMetadata"]["KeyState"] == "PendingImport"


def test_hmac_import_and_what_is_not_offered(kms: Any) -> None:
    key_id = _external(kms, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    params = kms.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                           WrappingKeySpec="RSA_2048")
    material = os.urandom(32)
    kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"],
                            EncryptedKeyMaterial=_wrap(params["PublicKey"], material,
                                                       "RSAES_OAEP_SHA_256"),
                            ExpirationModel=NO_EXPIRY)
    import hashlib
    import hmac

    tag = kms.generate_mac(KeyId=key_id, Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"]
    assert tag == hmac.new(material, b"m", hashlib.sha256).digest()
    with pytest.raises(ClientError) as refused:
        kms.create_key(Origin="EXTERNAL", KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    assert _code(refused) == "UnsupportedOperationException"
    with pytest.raises(ClientError) as refused:  # a key keyquorum generated
        kms.delete_imported_key_material(KeyId=kms.create_key()["KeyMetadata"]["KeyId"])
    assert _code(refused) == "UnsupportedOperationException"
    with pytest.raises(ClientError) as refused:
        kms.get_parameters_for_import(KeyId=kms.create_key()["KeyMetadata"]["KeyId"],
                                      WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                      WrappingKeySpec="RSA_2048")
    assert _code(refused) == "KMSInvalidStateException"
