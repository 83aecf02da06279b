"""KMS answer shapes for keyquorum keys: KeyMetadata, tags, rotations."""

from __future__ import annotations

from typing import Any

from keyquorum.keys.models import Key
from keyquorum.keys.specs import get_spec
from keyquorum.keys.states import KeyState
from keyquorum.kms.ids import MACS, SIGNING, USAGES, Names, aws_spec, key_state
from keyquorum.kms.imports import PendingKey


def key_metadata(key: Key, names: Names, valid_to: float | None = None) -> dict[str, Any]:
    """AWS's KeyMetadata for ``key`` (fields AWS leaves out for this kind of key are left
    out here too); ``valid_to``: when its imported material expires."""
    spec = aws_spec(key.spec)
    meta: dict[str, Any] = {
        "AWSAccountId": names.account, "KeyId": key.id, "Arn": names.key_arn(key.id),
        "CreationDate": key.created_at, "Enabled": key.state is KeyState.ENABLED,
        "Description": key.description or "", "KeyUsage": USAGES.get(key.purpose,
                                                                      key.purpose.upper()),
        "KeyState": key_state(key.state),
        "Origin": "EXTERNAL" if key.origin == "imported" else "AWS_KMS",
        "KeyManager": "CUSTOMER", "CustomerMasterKeySpec": spec, "KeySpec": spec,
        "MultiRegion": False,
    }
    if key.destroy_at is not None and key.state is KeyState.DESTROY_SCHEDULED:
        meta["DeletionDate"] = key.destroy_at
        meta["PendingDeletionWindowInDays"] = key.deletion_window_days
    if key.origin == "imported":
        meta["ExpirationModel"] = "KEY_MATERIAL_DOES_NOT_EXPIRE"
        if valid_to is not None:
            meta.update(ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=valid_to)
    return _algorithms(meta, key.spec, key.purpose)


def pending_metadata(pending: PendingKey, names: Names) -> dict[str, Any]:
    """KeyMetadata of a key waiting for its imported material (``PendingImport``)."""
    spec = aws_spec(pending.spec)
    meta: dict[str, Any] = {
        "AWSAccountId": names.account, "KeyId": pending.key_id,
        "Arn": names.key_arn(pending.key_id), "CreationDate": pending.created_at,
        "Enabled": False, "Description": pending.description,
        "KeyUsage": USAGES[get_spec(pending.spec).default_purpose],
        "KeyState": "PendingImport", "Origin": "EXTERNAL", "KeyManager": "CUSTOMER",
        "CustomerMasterKeySpec": spec, "KeySpec": spec, "MultiRegion": False}
    return _algorithms(meta, pending.spec)


def _algorithms(meta: dict[str, Any], spec: str, purpose: str | None = None) -> dict[str, Any]:
    family = get_spec(spec).family
    if family == "aead":
        meta["EncryptionAlgorithms"] = ["SYMMETRIC_DEFAULT"]
    elif purpose == "encrypt":  # an RSA encryption key
        meta["EncryptionAlgorithms"] = ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
    elif family == "sign":
        meta["SigningAlgorithms"] = list(SIGNING.get(spec, ()))
    elif family == "mac":
        meta["MacAlgorithms"] = [MACS[spec]]
    return meta


def tags_of(key: Key) -> list[dict[str, str]]:
    return [{"TagKey": k, "TagValue": v} for k, v in sorted(key.labels.items())]
