"""The AWS KMS seal: a cloud KMS key wraps the root key (Encrypt/Decrypt in the KMS).

Configured by the key id (or ARN or alias), the region and an optional
``endpoint_url`` (a VPC endpoint, or a test double such as moto). Credentials
come from the standard AWS chain (environment, shared files, instance role);
none is ever stored. Each call names an EncryptionContext binding the seal's id
and kind, so KMS itself refuses to decrypt one seal's copy as another's (and
CloudTrail shows which seal asked).

Before Decrypt the key's state is read (DescribeKey, when the caller may), so a
disabled or deleted key is reported as such rather than as a generic failure.

boto3 is optional (``pip install keyquorum[awskms]``) and imported on first use.
"""

from __future__ import annotations

import re
from typing import Any

from keyquorum.errors import InvalidRequest, SealUnavailable
from keyquorum.seal.entry import AWSKMS, SealEntry

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
# Never hang a start-up on an unreachable KMS: a few seconds, two tries, then stay sealed.
_TIMEOUTS = {"connect_timeout": 5, "read_timeout": 10,
             "retries": {"max_attempts": 2, "mode": "standard"}}
_REASONS = {
    "NotFoundException": "key_not_found",
    "DisabledException": "key_disabled",
    "KMSInvalidStateException": "key_disabled",
    "AccessDeniedException": "access_denied",
    "InvalidCiphertextException": "unwrap_failed",
    "IncorrectKeyException": "unwrap_failed",
    "UnrecognizedClientException": "credentials_refused",
    "InvalidSignatureException": "credentials_refused",
}


def encryption_context(seal_id: str) -> dict[str, str]:
    return {"keyquorum:seal-id": seal_id, "keyquorum:seal-kind": AWSKMS,
            "keyquorum:purpose": "root-key"}


def parse_params(body: dict[str, Any]) -> dict[str, Any]:
    """The public parameters of a new KMS seal, checked (nothing is contacted yet).

    Which fields a request may carry (never a credential) is the request model's rule
    (``api.bodies_sys.AddAwsKmsSeal``); the values are checked here.
    """
    key_id, region = body.get("key_id"), body.get("region")
    if not isinstance(key_id, str) or not 1 <= len(key_id) <= 2048:
        raise InvalidRequest("awskms: key_id must be a key id, ARN or alias")
    if not isinstance(region, str) or not _REGION.match(region):
        raise InvalidRequest("awskms: region must be an AWS region such as eu-west-1")
    params: dict[str, Any] = {"key_id": key_id, "region": region}
    endpoint = body.get("endpoint_url")
    if endpoint is not None:
        if not isinstance(endpoint, str) or not re.match(r"^https?://[^\s/]+", endpoint):
            raise InvalidRequest("awskms: endpoint_url must be an http(s) URL")
        params["endpoint_url"] = endpoint
    return params


def _unavailable(message: str, reason: str) -> SealUnavailable:
    return SealUnavailable(f"awskms: {message}", reason=reason)


def _client(params: dict[str, Any]) -> Any:
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise _unavailable("boto3 is not installed (pip install 'keyquorum[awskms]')",
                           "library_missing") from None
    return boto3.client("kms", region_name=params["region"],
                        endpoint_url=params.get("endpoint_url"), config=Config(**_TIMEOUTS))


def _call(params: dict[str, Any], action: str, **kwargs: Any) -> dict[str, Any]:
    """One KMS call; every failure becomes ``SealUnavailable`` naming the KMS error code only."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        return getattr(_client(params), action)(**kwargs)  # type: ignore[no-any-return]
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", "unknown"))
        raise _unavailable(f"{action} refused for key {params['key_id']!r} ({code})",
                           _REASONS.get(code, "kms_error")) from None
    except NoCredentialsError:
        raise _unavailable("no AWS credentials found in the standard chain",
                           "credentials_missing") from None
    except BotoCoreError as exc:
        raise _unavailable(f"cannot reach KMS ({type(exc).__name__})", "unreachable") from None


def _check_enabled(params: dict[str, Any]) -> None:
    try:
        described = _call(params, "describe_key", KeyId=params["key_id"])
    except SealUnavailable as exc:
        if exc.details.get("reason") == "access_denied":  # may Decrypt without DescribeKey
            return
        raise
    state = described.get("KeyMetadata", {}).get("KeyState", "Enabled")
    if state != "Enabled":
        raise _unavailable(f"key {params['key_id']!r} is {state}", "key_disabled")


def create(root_key: bytes, seal_id: str, params: dict[str, Any], now: float) -> SealEntry:
    """Wrap ``root_key`` under the KMS key, and check KMS gives it back."""
    _check_enabled(params)
    context = encryption_context(seal_id)
    answer = _call(params, "encrypt", KeyId=params["key_id"], Plaintext=root_key,
                   EncryptionContext=context)
    wrapped = bytes(answer["CiphertextBlob"])
    stored = {**params, "key_arn": str(answer.get("KeyId", params["key_id"]))}
    entry = SealEntry(AWSKMS, seal_id, stored, wrapped, now)
    if open_root(entry) != root_key:
        raise _unavailable("KMS did not give back what it wrapped", "unwrap_failed")
    return entry


def open_root(entry: SealEntry) -> bytes:
    """The root key from KMS Decrypt, or ``SealUnavailable`` saying what failed."""
    params = entry.params
    _check_enabled(params)
    answer = _call(params, "decrypt", KeyId=params.get("key_arn", params["key_id"]),
                   CiphertextBlob=entry.wrapped_root,
                   EncryptionContext=encryption_context(entry.id))
    return bytes(answer["Plaintext"])
