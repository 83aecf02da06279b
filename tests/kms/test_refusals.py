"""Bad KMS requests are answered with AWS's exception and change nothing; every call is
authorized by the native policy and audited with the KMS action and the access key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from botocore.exceptions import ClientError
from tests.kms.live import LiveServer
from tests.kms.signing import post, signed_headers

CREATE = "TrentService.CreateKey"


def _count_keys(live: LiveServer) -> int:
    with live.http() as http:
        return len(http.get("/v1/keys", params={"limit": "1000"}).json()["keys"])


def _aws_error(answer: Any) -> str:
    assert answer.headers["content-type"] == "application/x-amz-json-1.1"
    return str(answer.json()["__type"])


def test_unsigned_badly_signed_expired_and_replayed_requests_change_nothing(
        live: LiveServer, root_key: dict[str, Any]) -> None:
    before = _count_keys(live)
    body = b"{}"
    good = signed_headers(live.addr, root_key, CREATE, body)
    unsigned = {k: v for k, v in good.items() if k != "Authorization"}
    assert _aws_error(post(live.addr, unsigned, body)) == "MissingAuthenticationTokenException"
    wrong_secret = signed_headers(live.addr, root_key, CREATE, body, secret="x" * 40)
    answer = post(live.addr, wrong_secret, body)
    assert (answer.status_code, _aws_error(answer)) == (400, "InvalidSignatureException")
    assert _aws_error(post(live.addr, good, b'{"Description": "changed"}')) \
        == "InvalidSignatureException"  # the body is not the one signed
    stale = signed_headers(live.addr, root_key, CREATE, body,
                           when=datetime.now(UTC) - timedelta(minutes=6))
    answer = post(live.addr, stale, body)
    assert _aws_error(answer) == "InvalidSignatureException"
    assert "expired" in answer.json()["message"]
    future = signed_headers(live.addr, root_key, CREATE, body,
                            when=datetime.now(UTC) + timedelta(minutes=6))
    assert _aws_error(post(live.addr, future, body)) == "InvalidSignatureException"
    unknown = signed_headers(live.addr, {"access_key_id": "KQAKAAAAAAAAAAAAAAAA",
                                         "secret_access_key": "y" * 40}, CREATE, body)
    assert _aws_error(post(live.addr, unknown, body)) == "UnrecognizedClientException"
    other_service = signed_headers(live.addr, root_key, CREATE, body, service="s3")
    assert _aws_error(post(live.addr, other_service, body)) == "InvalidSignatureException"
    assert _count_keys(live) == before
    # A signature replayed within the skew window is accepted, as by AWS (SDK retries).
    assert post(live.addr, good, body).status_code == 200
    assert _count_keys(live) == before + 1


def test_an_unsigned_target_is_refused(live: LiveServer, root_key: dict[str, Any]) -> None:
    headers = signed_headers(live.addr, root_key, "TrentService.ListKeys", b"{}")
    headers["Authorization"] = headers["Authorization"].replace(";x-amz-target", "")
    assert _aws_error(post(live.addr, headers, b"{}")) == "IncompleteSignatureException"


@pytest.mark.parametrize("target", ["TrentService.NoSuchOperation", "Foo.ListKeys", "",
                                    "TrentService.ConnectCustomKeyStore"])
def test_unknown_and_unoffered_targets_are_unsupported(
        live: LiveServer, root_key: dict[str, Any], target: str) -> None:
    answer = post(live.addr, signed_headers(live.addr, root_key, target, b"{}"), b"{}")
    assert (answer.status_code, _aws_error(answer)) == (400, "UnsupportedOperationException")


@pytest.mark.parametrize(("body", "expected"), [
    (b"{not json", "SerializationException"), (b"[1, 2]", "SerializationException"),
    (b'{"KeySpec": 7}', "SerializationException"),
    (b'{"NoSuchField": "x"}', "SerializationException"),
    (b'{"KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "SIGN_VERIFY"}', "ValidationException"),
])
def test_malformed_bodies(live: LiveServer, root_key: dict[str, Any], body: bytes,
                          expected: str) -> None:
    before = _count_keys(live)
    answer = post(live.addr, signed_headers(live.addr, root_key, CREATE, body), body)
    assert (answer.status_code, _aws_error(answer)) == (400, expected)
    assert _count_keys(live) == before


def test_a_missing_required_field_is_a_validation_error(
        live: LiveServer, root_key: dict[str, Any]) -> None:
    body = orjson.dumps({"Plaintext": "eA=="})
    headers = signed_headers(live.addr, root_key, "TrentService.Encrypt", body)
    assert _aws_error(post(live.addr, headers, body)) == "ValidationException"


def test_the_native_policy_decides_and_the_audit_names_action_and_access_key(
        live: LiveServer, root_key: dict[str, Any]) -> None:
    admin = live.kms(root_key)
    key_id = admin.create_key()["KeyMetadata"]["KeyId"]
    with live.http() as http:
        assert http.put("/v1/policies/kms-encrypt-only", json={"rules": [
            {"keys": "kms/**", "operations": ["encrypt"]}]}).status_code == 200
    weak = live.access_key(["kms-encrypt-only"], name="encrypt-only")
    client = live.kms(weak)
    sealed = client.encrypt(KeyId=key_id, Plaintext=b"p")["CiphertextBlob"]
    with pytest.raises(ClientError) as refused:
        client.decrypt(CiphertextBlob=sealed)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    with pytest.raises(ClientError) as refused:
        client.create_key()
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    records = live.audit(identity=weak["accessor"])
    seen = {(r["operation"], r["outcome"], r["detail"]["action"]) for r in records}
    assert ("encrypt", "ok", "Encrypt") in seen
    assert ("decrypt", "denied", "Decrypt") in seen
    assert ("create", "denied", "CreateKey") in seen
    assert all(r["detail"]["api"] == "aws-kms" for r in records)
    assert all(r["detail"]["access_key"] == weak["access_key_id"] for r in records)
    encrypted = [r for r in records if r["operation"] == "encrypt"]
    assert encrypted[0]["key"] == f"kms/{key_id}" and encrypted[0]["key_version"] == 1
    assert weak["secret_access_key"] not in str(live.audit())


def test_a_revoked_or_expired_access_key_is_refused(live: LiveServer) -> None:
    made = live.access_key(["root"])
    client = live.kms(made)
    client.list_keys()
    with live.http() as http:
        assert http.delete(f"/v1/auth/access-keys/{made['accessor']}").status_code == 200
    with pytest.raises(ClientError) as refused:
        client.list_keys()
    assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_regions_are_checked_when_configured(tmp_path: Any, migrated_store: Any) -> None:
    server = LiveServer(tmp_path / "data", migrated=migrated_store,
                        aws_regions=("eu-central-1",), aws_account_id="123456789012")
    try:
        server.start()
        key = server.access_key(["root"])
        made = server.kms(key, region="eu-central-1").create_key()["KeyMetadata"]
        assert made["Arn"].startswith("arn:aws:kms:eu-central-1:123456789012:key/")
        with pytest.raises(ClientError) as refused:
            server.kms(key, region="us-east-1").list_keys()
        assert refused.value.response["Error"]["Code"] == "InvalidSignatureException"
    finally:
        server.stop()


def test_any_credentials_mode_takes_any_well_formed_signature_as_root(
        tmp_path: Any, migrated_store: Any) -> None:
    server = LiveServer(tmp_path / "data", migrated=migrated_store, aws_any_credentials=True)
    try:
        server.start()
        client = server.kms({"access_key_id": "AKIAANYTHING", "secret_access_key": "any"})
        key_id = client.create_key()["KeyMetadata"]["KeyId"]
        assert client.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]
        records = server.audit(operation="create")
        assert records[-1]["identity"] == "aws-any-credentials"
        assert records[-1]["detail"]["access_key"] == "AKIAANYTHING"
        headers = signed_headers(server.addr, {"access_key_id": "A", "secret_access_key": "s"},
                                 "TrentService.ListKeys", b"{}")
        headers.pop("Authorization")
        assert _aws_error(post(server.addr, headers, b"{}")) \
            == "MissingAuthenticationTokenException"
    finally:
        server.stop()


def test_a_body_over_64_kib_is_refused(live: LiveServer, root_key: dict[str, Any]) -> None:
    body = orjson.dumps({"Description": "x" * (65 * 1024)})
    answer = post(live.addr, signed_headers(live.addr, root_key, CREATE, body), body)
    assert (answer.status_code, _aws_error(answer)) == (400, "ValidationException")


def test_rule_conditions_see_the_kms_encryption_context(
        live: LiveServer, root_key: dict[str, Any]) -> None:
    """A rule with ``context_keys`` decides KMS calls on their EncryptionContext, as it
    decides native ones on their context."""
    key_id = live.kms(root_key).create_key()["KeyMetadata"]["KeyId"]
    with live.http() as http:
        assert http.put("/v1/policies/tenant-bound", json={"rules": [
            {"keys": "kms/**", "operations": ["encrypt", "datakey", "decrypt"],
             "conditions": {"context_keys": ["tenant"]}}]}).status_code == 200
    client = live.kms(live.access_key(["tenant-bound"]))
    sealed = client.encrypt(KeyId=key_id, Plaintext=b"x", EncryptionContext={"tenant": "a"})
    assert client.decrypt(CiphertextBlob=sealed["CiphertextBlob"],
                          EncryptionContext={"tenant": "a"})["Plaintext"] == b"x"
    assert client.generate_data_key(KeyId=key_id, KeySpec="AES_256",
                                    EncryptionContext={"tenant": "a"})["Plaintext"]
    for call in (lambda: client.encrypt(KeyId=key_id, Plaintext=b"x"),
                 lambda: client.generate_data_key(KeyId=key_id, KeySpec="AES_256"),
                 lambda: client.encrypt(KeyId=key_id, Plaintext=b"x",
                                        EncryptionContext={"other": "a"})):
        with pytest.raises(ClientError) as refused:
            call()
        assert refused.value.response["Error"]["Code"] == "AccessDeniedException"


def test_unauthenticated_kms_refusals_are_counted_not_written_one_by_one(
        live: LiveServer, root_key: dict[str, Any]) -> None:
    def anonymous_records() -> int:
        return sum(1 for r in live.audit() if r["identity"] is None)

    before = anonymous_records()
    body = b"{}"
    for n in range(20):
        headers = signed_headers(live.addr, root_key, CREATE, body, secret=f"wrong{n}" * 8)
        assert _aws_error(post(live.addr, headers, body)) == "InvalidSignatureException"
    assert anonymous_records() - before <= 1  # at most the window's first, at once
