"""The AWS Encryption SDK for Python against keyquorum: its KMS master key provider (a
botocore session whose KMS endpoint is the live server) and the KMS keyring of the
material providers library (a boto3 client with ``endpoint_url``). Messages encrypted by
one client decrypt with another, with other credentials, across a key rotation."""

from __future__ import annotations

from typing import Any

import aws_encryption_sdk
import botocore.session
import pytest
from aws_encryption_sdk.identifiers import CommitmentPolicy
from tests.kms.live import LiveServer


def _provider(key: dict[str, Any], arn: str) -> Any:
    session = botocore.session.Session()
    session.set_credentials(key["access_key_id"], key["secret_access_key"])
    return aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=[arn],
                                                            botocore_session=session)


def test_encrypt_with_one_client_decrypt_with_another_across_a_rotation(
        live: LiveServer, root_key: dict[str, Any], kms: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", live.addr)  # how botocore finds the endpoint
    arn = kms.create_key(Description="esdk")["KeyMetadata"]["Arn"]
    with live.http() as http:
        assert http.put("/v1/policies/esdk-reader", json={"rules": [
            {"keys": "kms/**", "operations": ["decrypt"]}]}).status_code == 200
    reader = live.access_key(["esdk-reader"])
    writer_sdk = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    reader_sdk = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    context = {"tenant": "acme"}
    before, _header = writer_sdk.encrypt(source=b"before rotation" * 100,
                                         key_provider=_provider(root_key, arn),
                                         encryption_context=context)
    kms.rotate_key_on_demand(KeyId=arn)
    after, _header = writer_sdk.encrypt(source=b"after rotation",
                                        key_provider=_provider(root_key, arn),
                                        encryption_context=context)
    for message, expected in ((before, b"before rotation" * 100),
                              (after, b"after rotation")):
        plain, header = reader_sdk.decrypt(source=message,
                                           key_provider=_provider(reader, arn))
        assert plain == expected
        assert header.encryption_context["tenant"] == "acme"
    # The reader may decrypt but not encrypt: the native policy decides for the SDK too.
    with pytest.raises(Exception, match="unable to generate data key"):
        reader_sdk.encrypt(source=b"x", key_provider=_provider(reader, arn))
    denied = live.audit(identity=reader["accessor"], operation="datakey")
    assert [(r["outcome"], r["detail"]["action"]) for r in denied] \
        == [("denied", "GenerateDataKey")]
    used = {r["key_version"] for r in live.audit(identity=reader["accessor"],
                                                 operation="decrypt")}
    assert used == {1, 2}


def _keyring(live: LiveServer, key: dict[str, Any], arn: str) -> Any:
    from aws_cryptographic_material_providers.mpl import AwsCryptographicMaterialProviders
    from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig
    from aws_cryptographic_material_providers.mpl.models import CreateAwsKmsKeyringInput

    providers = AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())
    return providers.create_aws_kms_keyring(input=CreateAwsKmsKeyringInput(
        kms_key_id=arn, kms_client=live.kms(key)))


def test_the_kms_keyring_of_the_material_providers_library(
        live: LiveServer, root_key: dict[str, Any], kms: Any) -> None:
    """The KMS keyring (aws-cryptographic-material-providers) takes a boto3 client, so
    ``endpoint_url`` is all it needs; two keyrings with different access keys, one
    rotation in between."""
    arn = kms.create_key(Description="esdk keyring")["KeyMetadata"]["Arn"]
    with live.http() as http:
        assert http.put("/v1/policies/keyring-reader", json={"rules": [
            {"keys": "kms/**", "operations": ["decrypt"]}]}).status_code == 200
    reader = live.access_key(["keyring-reader"])
    sdk = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    first, _ = sdk.encrypt(source=b"one", keyring=_keyring(live, root_key, arn),
                           encryption_context={"purpose": "keyring"})
    kms.rotate_key_on_demand(KeyId=arn)
    second, _ = sdk.encrypt(source=b"two", keyring=_keyring(live, root_key, arn),
                            encryption_context={"purpose": "keyring"})
    reading = _keyring(live, reader, arn)
    assert sdk.decrypt(source=first, keyring=reading)[0] == b"one"
    assert sdk.decrypt(source=second, keyring=reading)[0] == b"two"
