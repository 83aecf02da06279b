"""The same KMS calls against moto's server and against keyquorum, answers compared by
shape (the fields present and their types, recursively). Every difference is listed in
``INTENDED`` with its reason; any other difference fails."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from tests.kms.live import LiveServer
from tests.kq_support import free_port

INTENDED: dict[tuple[str, str], str] = {
    ("CreateKey", "KeyMetadata.SigningAlgorithms[]"):
        "AWS leaves SigningAlgorithms out of a symmetric key's metadata; moto sends []",
    ("DescribeKey", "KeyMetadata.SigningAlgorithms[]"):
        "AWS leaves SigningAlgorithms out of a symmetric key's metadata; moto sends []",
    ("GenerateDataKeyPair", "__failed"):
        "moto's server fails GenerateDataKeyPair for ECC_NIST_P256 (500); keyquorum answers",
    ("GenerateDataKeyPairWithoutPlaintext", "__failed"):
        "moto's server fails GenerateDataKeyPair for ECC_NIST_P256 (500); keyquorum answers",
}
"""(operation, field path) → why keyquorum's answer differs there from moto's. Fields
keyquorum sends and moto leaves out are accepted without a line here when AWS's own
model (botocore's service-2.json) defines them for that answer: moto is the one behind."""


def _in_aws_output(operation: str, path: str) -> bool:
    """Whether ``path`` is a field of ``operation``'s output in AWS's KMS model."""
    from keyquorum.kms.call import kms_model

    model = kms_model()
    shape = model["shapes"][model["operations"][operation]["output"]["shape"]]
    for part in path.split("."):
        name = part.removesuffix("[]")
        member = shape.get("members", {}).get(name)
        if member is None:
            return False
        shape = model["shapes"][member["shape"]]
        if part.endswith("[]"):
            shape = model["shapes"][shape["member"]["shape"]]
    return True


def _shape(value: Any, path: str = "") -> dict[str, str]:
    """Field path → type name, for every field of an answer."""
    if isinstance(value, dict):
        found: dict[str, str] = {}
        for key, item in value.items():
            if key == "ResponseMetadata":
                continue
            found.update(_shape(item, f"{path}.{key}" if path else key))
        return found or {path: "dict"}
    if isinstance(value, list):
        return _shape(value[0], path + "[]") if value else {path + "[]": "empty"}
    kind = {bool: "bool", int: "number", float: "number", str: "str", bytes: "bytes",
            datetime.datetime: "time"}.get(type(value), type(value).__name__)
    return {path: kind}


def _scenario(kms: Any) -> dict[str, dict[str, Any]]:
    """One run of every operation both serve; the answers by operation name."""
    answers: dict[str, dict[str, Any]] = {}

    def call(name: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        try:
            answers[name] = fn(**kwargs)
        except ClientError as exc:  # recorded: compared as a failure of that operation
            answers[name] = {"__failed": exc.response["Error"]["Code"]}
        return answers[name]

    key_id = call("CreateKey", kms.create_key, Description="shape",
                  Tags=[{"TagKey": "a", "TagValue": "b"}])["KeyMetadata"]["KeyId"]
    call("DescribeKey", kms.describe_key, KeyId=key_id)
    call("ListKeys", kms.list_keys)
    call("UpdateKeyDescription", kms.update_key_description, KeyId=key_id, Description="d")
    call("DisableKey", kms.disable_key, KeyId=key_id)
    call("EnableKey", kms.enable_key, KeyId=key_id)
    call("CreateAlias", kms.create_alias, AliasName="alias/shape", TargetKeyId=key_id)
    call("ListAliases", kms.list_aliases, KeyId=key_id)
    call("TagResource", kms.tag_resource, KeyId=key_id, Tags=[{"TagKey": "c", "TagValue": "d"}])
    call("UntagResource", kms.untag_resource, KeyId=key_id, TagKeys=["c"])
    call("ListResourceTags", kms.list_resource_tags, KeyId=key_id)
    blob = call("Encrypt", kms.encrypt, KeyId="alias/shape", Plaintext=b"p",
                EncryptionContext={"k": "v"})["CiphertextBlob"]
    call("Decrypt", kms.decrypt, CiphertextBlob=blob, EncryptionContext={"k": "v"})
    call("ReEncrypt", kms.re_encrypt, CiphertextBlob=blob, SourceEncryptionContext={"k": "v"},
         DestinationKeyId=key_id)
    call("GenerateDataKey", kms.generate_data_key, KeyId=key_id, KeySpec="AES_256")
    call("GenerateDataKeyWithoutPlaintext", kms.generate_data_key_without_plaintext,
         KeyId=key_id, KeySpec="AES_256")
    call("GenerateDataKeyPair", kms.generate_data_key_pair, KeyId=key_id,
         KeyPairSpec="ECC_NIST_P256")
    call("GenerateDataKeyPairWithoutPlaintext", kms.generate_data_key_pair_without_plaintext,
         KeyId=key_id, KeyPairSpec="ECC_NIST_P256")
    call("GenerateRandom", kms.generate_random, NumberOfBytes=16)
    call("EnableKeyRotation", kms.enable_key_rotation, KeyId=key_id)
    call("GetKeyRotationStatus", kms.get_key_rotation_status, KeyId=key_id)
    call("RotateKeyOnDemand", kms.rotate_key_on_demand, KeyId=key_id)
    call("ListKeyRotations", kms.list_key_rotations, KeyId=key_id)
    call("DisableKeyRotation", kms.disable_key_rotation, KeyId=key_id)
    signer = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    signer_id = signer["KeyMetadata"]["KeyId"]
    signature = call("Sign", kms.sign, KeyId=signer_id, Message=b"m",
                     SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    call("Verify", kms.verify, KeyId=signer_id, Message=b"m", Signature=signature,
         SigningAlgorithm="ECDSA_SHA_256")
    call("GetPublicKey", kms.get_public_key, KeyId=signer_id)
    mac_key = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    mac_id = mac_key["KeyMetadata"]["KeyId"]
    tag = call("GenerateMac", kms.generate_mac, KeyId=mac_id, Message=b"m",
               MacAlgorithm="HMAC_SHA_256")["Mac"]
    call("VerifyMac", kms.verify_mac, KeyId=mac_id, Message=b"m", Mac=tag,
         MacAlgorithm="HMAC_SHA_256")
    call("UpdateAlias", kms.update_alias, AliasName="alias/shape", TargetKeyId=key_id)
    call("DeleteAlias", kms.delete_alias, AliasName="alias/shape")
    call("ScheduleKeyDeletion", kms.schedule_key_deletion, KeyId=key_id, PendingWindowInDays=7)
    call("CancelKeyDeletion", kms.cancel_key_deletion, KeyId=key_id)
    return answers


@pytest.fixture(scope="module")
def moto_kms() -> Any:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield boto3.client("kms", endpoint_url=f"http://127.0.0.1:{port}",
                           region_name="eu-west-1", aws_access_key_id="testing",
                           aws_secret_access_key="testing",
                           config=Config(retries={"max_attempts": 1}))
    finally:
        server.stop()


def test_answers_have_moto_s_shape_but_for_the_listed_differences(
        live: LiveServer, root_key: dict[str, Any], moto_kms: Any) -> None:
    ours = _scenario(live.kms(root_key))
    theirs = _scenario(moto_kms)
    assert set(ours) == set(theirs)
    found: dict[tuple[str, str], str] = {}
    for operation in sorted(ours):
        mine, other = _shape(ours[operation]), _shape(theirs[operation])
        for path in sorted(set(mine) | set(other)):
            if mine.get(path) == other.get(path):
                continue
            if other.get(path) is None and _in_aws_output(operation, path):
                continue  # AWS defines the field; moto does not send it
            found[(operation, path)] = f"keyquorum {mine.get(path)}, moto {other.get(path)}"
    unexplained = {k: v for k, v in found.items() if k not in INTENDED}
    assert unexplained == {}, "\n".join(f"{k}: {v}" for k, v in unexplained.items())
    assert set(INTENDED) - set(found) == set(), "listed differences that are gone"
