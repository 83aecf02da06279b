"""KMS key management with boto3 against a live server: keys, names, states, tags, rotation.

Keys made through KMS are ordinary keyquorum keys (``kms/<KeyId>``); native keys are
reachable by KeyId, ARN and ``alias/<native name>``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.kms.live import LiveServer

pytestmark = pytest.mark.postgresql

ACCOUNT = "000000000000"


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def _native_key(live: LiveServer, name: str, spec: str = "aes-256-gcm") -> dict[str, Any]:
    with live.http() as http:
        made = http.post("/v1/keys", json={"name": name, "spec": spec})
    assert made.status_code == 200, made.text
    answer: dict[str, Any] = made.json()
    return answer


@pytest.mark.parametrize(("key_spec", "usage", "native_spec"), [
    ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", "aes-256-gcm"),
    ("HMAC_256", "GENERATE_VERIFY_MAC", "hmac-sha256"),
    ("HMAC_512", "GENERATE_VERIFY_MAC", "hmac-sha512"),
    ("ECC_NIST_P256", "SIGN_VERIFY", "ecdsa-p256"),
    ("ECC_SECG_P256K1", "SIGN_VERIFY", "ecdsa-secp256k1"),
    ("ECC_NIST_EDWARDS25519", "SIGN_VERIFY", "ed25519"),
    ("RSA_3072", "SIGN_VERIFY", "rsa-3072"),
    ("ML_DSA_44", "SIGN_VERIFY", "ml-dsa-44"),
])
def test_create_key_makes_an_ordinary_keyquorum_key(
        live: LiveServer, kms: Any, key_spec: str, usage: str, native_spec: str) -> None:
    made = kms.create_key(KeySpec=key_spec, KeyUsage=usage, Description="made by boto3",
                          Tags=[{"TagKey": "team", "TagValue": "payments"}])["KeyMetadata"]
    key_id = made["KeyId"]
    assert made["Arn"] == f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/{key_id}"
    assert (made["KeySpec"], made["KeyUsage"], made["KeyState"]) == (key_spec, usage, "Enabled")
    assert made["Enabled"] is True and made["Description"] == "made by boto3"
    with live.http() as http:
        native = http.get(f"/v1/keys/kms/{key_id}").json()
    assert native["spec"] == native_spec
    assert native["labels"] == {"team": "payments"}
    assert native["description"] == "made by boto3"


@pytest.mark.parametrize(("key_spec", "usage"), [
    ("SM2", "SIGN_VERIFY"), ("ECC_NIST_P256", "KEY_AGREEMENT")])
def test_specs_keyquorum_lacks_say_what_to_use(kms: Any, key_spec: str, usage: str) -> None:
    with pytest.raises(ClientError) as refused:
        kms.create_key(KeySpec=key_spec, KeyUsage=usage)
    assert _code(refused) == "UnsupportedOperationException"
    assert "use" in refused.value.response["Error"]["Message"]


def test_a_native_key_is_reachable_by_id_arn_and_alias(live: LiveServer, kms: Any) -> None:
    native = _native_key(live, "team/orders")
    key_id = native["id"]
    arn = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/{key_id}"
    for identifier in (key_id, arn, "alias/team/orders",
                       f"arn:aws:kms:eu-west-1:{ACCOUNT}:alias/team/orders"):
        assert kms.describe_key(KeyId=identifier)["KeyMetadata"]["KeyId"] == key_id
    listed = {k["KeyId"] for k in kms.list_keys(Limit=1000)["Keys"]}
    assert key_id in listed
    aliases = {a["AliasName"]: a["TargetKeyId"] for a in kms.list_aliases()["Aliases"]}
    assert aliases["alias/team/orders"] == key_id


def test_unknown_keys_and_aliases_are_not_found(kms: Any) -> None:
    for identifier in ("11111111-2222-3333-4444-555555555555", "alias/nothing-here",
                       "not-a-key-id", "arn:aws:kms:eu-west-1:123456789012:key/"
                       "11111111-2222-3333-4444-555555555555"):
        with pytest.raises(ClientError) as refused:
            kms.describe_key(KeyId=identifier)
        assert _code(refused) == "NotFoundException", identifier


def test_aliases_are_created_moved_used_and_deleted(kms: Any) -> None:
    first = kms.create_key()["KeyMetadata"]["KeyId"]
    second = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/app-data", TargetKeyId=first)
    with pytest.raises(ClientError) as taken:
        kms.create_alias(AliasName="alias/app-data", TargetKeyId=second)
    assert _code(taken) == "AlreadyExistsException"
    sealed = kms.encrypt(KeyId="alias/app-data", Plaintext=b"x")
    assert sealed["KeyId"].endswith(first)
    kms.update_alias(AliasName="alias/app-data", TargetKeyId=second)
    assert kms.describe_key(KeyId="alias/app-data")["KeyMetadata"]["KeyId"] == second
    assert kms.decrypt(CiphertextBlob=sealed["CiphertextBlob"])["Plaintext"] == b"x"
    listed = kms.list_aliases(KeyId=second)["Aliases"]
    assert [a["AliasName"] for a in listed if a["AliasName"] == "alias/app-data"]
    kms.delete_alias(AliasName="alias/app-data")
    with pytest.raises(ClientError) as gone:
        kms.describe_key(KeyId="alias/app-data")
    assert _code(gone) == "NotFoundException"
    for bad in ("alias/aws/reserved", "alias/bad name!"):
        with pytest.raises(ClientError) as refused:
            kms.create_alias(AliasName=bad, TargetKeyId=first)
        assert _code(refused) in ("InvalidAliasNameException", "NotFoundException"), bad


def test_an_alias_cannot_take_a_native_name(live: LiveServer, kms: Any) -> None:
    _native_key(live, "taken-name")
    target = kms.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as refused:
        kms.create_alias(AliasName="alias/taken-name", TargetKeyId=target)
    assert _code(refused) == "AlreadyExistsException"


def test_disable_enable_and_disabled_refusals(kms: Any) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    sealed = kms.encrypt(KeyId=key_id, Plaintext=b"kept")["CiphertextBlob"]
    kms.disable_key(KeyId=key_id)
    kms.disable_key(KeyId=key_id)  # as in AWS, again is fine
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"
    with pytest.raises(ClientError) as refused:
        kms.encrypt(KeyId=key_id, Plaintext=b"x")
    assert _code(refused) == "DisabledException"
    with pytest.raises(ClientError) as refused:
        kms.decrypt(CiphertextBlob=sealed)
    assert _code(refused) == "DisabledException"
    kms.enable_key(KeyId=key_id)
    assert kms.decrypt(CiphertextBlob=sealed)["Plaintext"] == b"kept"


def test_deletion_is_scheduled_7_to_30_days_and_cancelled(kms: Any) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as refused:
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=3)
    assert _code(refused) == "ValidationException"
    scheduled = kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert scheduled["KeyState"] == "PendingDeletion"
    assert scheduled["PendingWindowInDays"] == 7
    assert scheduled["KeyId"].endswith(key_id)
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert meta["KeyState"] == "PendingDeletion" and "DeletionDate" in meta
    with pytest.raises(ClientError) as refused:
        kms.encrypt(KeyId=key_id, Plaintext=b"x")
    assert _code(refused) == "KMSInvalidStateException"
    kms.cancel_key_deletion(KeyId=key_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"


def test_description_and_tags(kms: Any) -> None:
    key_id = kms.create_key(Tags=[{"TagKey": "a", "TagValue": "1"}])["KeyMetadata"]["KeyId"]
    kms.update_key_description(KeyId=key_id, Description="new words")
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == "new words"
    kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "b", "TagValue": "2"}])
    kms.untag_resource(KeyId=key_id, TagKeys=["a"])
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "b", "TagValue": "2"}]


def test_rotation(live: LiveServer, root_key: dict[str, Any], kms: Any) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=180)
    status = kms.get_key_rotation_status(KeyId=key_id)
    assert status["KeyRotationEnabled"] is True and status["RotationPeriodInDays"] == 180
    old = kms.encrypt(KeyId=key_id, Plaintext=b"before")["CiphertextBlob"]
    assert kms.rotate_key_on_demand(KeyId=key_id)["KeyId"] == key_id
    rotations = kms.list_key_rotations(KeyId=key_id)["Rotations"]
    assert len(rotations) == 1
    assert kms.decrypt(CiphertextBlob=old)["Plaintext"] == b"before"
    kms.disable_key_rotation(KeyId=key_id)
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False
    with pytest.raises(ClientError) as refused:  # botocore would refuse it before sending
        live.kms(root_key, validate=False).enable_key_rotation(KeyId=key_id,
                                                               RotationPeriodInDays=10)
    assert _code(refused) == "ValidationException"
    signing = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    with pytest.raises(ClientError) as refused:
        kms.enable_key_rotation(KeyId=signing["KeyMetadata"]["KeyId"])
    assert _code(refused) == "UnsupportedOperationException"


def test_policies_and_grants_say_what_to_use_instead(kms: Any) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    assert kms.list_key_policies(KeyId=key_id)["PolicyNames"] == ["default"]
    default = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    assert json.loads(default)["Statement"][0]["Principal"] == {
        "AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=default)  # same meaning
    assert kms.create_key(Policy=default)["KeyMetadata"]["KeyState"] == "Enabled"
    narrower = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/app"},
        "Action": "kms:Decrypt", "Resource": "*"}]})
    for call in (lambda: kms.put_key_policy(KeyId=key_id, PolicyName="default",
                                            Policy=narrower),
                 lambda: kms.create_key(Policy=narrower)):
        with pytest.raises(ClientError) as refused:
            call()
        assert _code(refused) == "UnsupportedOperationException"
        assert "policies" in refused.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as refused:
        kms.create_grant(KeyId=key_id, GranteePrincipal="arn:aws:iam::1:role/x",
                         Operations=["Encrypt"])
    assert _code(refused) == "UnsupportedOperationException"
    assert "access key" in refused.value.response["Error"]["Message"]


def test_kms_keys_are_in_the_native_listing_and_the_inventory(live: LiveServer,
                                                              kms: Any) -> None:
    key_id = kms.create_key(Description="inventoried")["KeyMetadata"]["KeyId"]
    with live.http() as http:
        listed = http.get("/v1/keys", params={"prefix": "kms/", "limit": "1000"}).json()
        inventory = http.get("/v1/reports/inventory")
    assert f"kms/{key_id}" in {k["name"] for k in listed["keys"]}
    assert inventory.status_code == 200, inventory.text
    assert f"kms/{key_id}" in inventory.text


def test_list_keys_pages_with_markers(kms: Any) -> None:
    for _ in range(3):
        kms.create_key()
    everything = {k["KeyId"] for k in kms.list_keys(Limit=1000)["Keys"]}
    paged: list[str] = []
    for page in kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 2}):
        paged += [k["KeyId"] for k in page["Keys"]]
    assert len(paged) == len(set(paged))
    assert set(paged) == everything


def test_a_key_arn_is_answered_in_the_region_it_was_asked_by(
        live: LiveServer, root_key: dict[str, Any], kms: Any) -> None:
    """keyquorum keys belong to no region: a client of another region that names a key by
    its ARN (as the Encryption SDK does) gets that ARN back."""
    arn = kms.create_key()["KeyMetadata"]["Arn"]
    elsewhere = live.kms(root_key, region="ap-south-1")
    blob = elsewhere.encrypt(KeyId=arn, Plaintext=b"x")
    assert blob["KeyId"] == arn
    assert elsewhere.decrypt(CiphertextBlob=blob["CiphertextBlob"], KeyId=arn)["KeyId"] == arn
    assert elsewhere.describe_key(KeyId=arn)["KeyMetadata"]["Arn"] == arn


def test_list_aliases_pages_with_markers(kms: Any) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    for n in range(3):
        kms.create_alias(AliasName=f"alias/paged-{n}", TargetKeyId=key_id)
    everything = [a["AliasName"] for a in kms.list_aliases(Limit=100)["Aliases"]]
    paged: list[str] = []
    for page in kms.get_paginator("list_aliases").paginate(PaginationConfig={"PageSize": 2}):
        paged += [a["AliasName"] for a in page["Aliases"]]
    assert paged == sorted(paged) and len(paged) == len(set(paged))
    assert set(everything) <= set(paged)
    assert {"alias/paged-0", "alias/paged-1", "alias/paged-2"} <= set(paged)


def test_a_compromised_key_refuses_as_aws_does(live: LiveServer, kms: Any) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"before")["CiphertextBlob"]
    with live.http() as http:
        revoked = http.post(f"/v1/keys/kms/{key_id}/revoke", json={"reason": "compromised"})
        assert revoked.status_code == 200, revoked.text
    for call in (lambda: kms.encrypt(KeyId=key_id, Plaintext=b"x"),
                 lambda: kms.decrypt(CiphertextBlob=blob),
                 lambda: kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")):
        with pytest.raises(ClientError) as refused:
            call()
        assert _code(refused) == "KMSInvalidStateException"
