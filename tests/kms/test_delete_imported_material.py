"""DeleteImportedKeyMaterial through boto3 against a live server: the material leaves
(storage and cache), the key shows PendingImport and refuses use, and only the same
material brings it back, after which old ciphertexts decrypt again."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.kms.live import LiveServer
from tests.kms.test_import import _external, _wrap


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def _import(kms: Any, key_id: str, material: bytes) -> None:
    params = kms.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                           WrappingKeySpec="RSA_2048")
    kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"],
                            EncryptedKeyMaterial=_wrap(params["PublicKey"], material,
                                                       "RSAES_OAEP_SHA_256"),
                            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")


def test_deleted_material_comes_back_only_as_the_same_material(live: LiveServer,
                                                               kms: Any) -> None:
    key_id = _external(kms)
    material = os.urandom(32)
    _import(kms, key_id, material)
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"kept", EncryptionContext={"t": "1"})
    kms.delete_imported_key_material(KeyId=key_id)

    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (meta["KeyState"], meta["Enabled"]) == ("PendingImport", False)
    with pytest.raises(ClientError) as refused:
        kms.decrypt(CiphertextBlob=blob["CiphertextBlob"], EncryptionContext={"t": "1"})
    assert _code(refused) in ("DisabledException", "KMSInvalidStateException")
    with pytest.raises(ClientError) as refused:
        kms.delete_imported_key_material(KeyId=key_id)
    assert _code(refused) == "KMSInvalidStateException"
    with live.http() as http:
        native = http.get(f"/v1/keys/kms/{key_id}").json()
        assert native["state"] == "disabled"
        assert native["versions"][0]["state"] == "suspended"
        # enabling it natively does not bring the material back: the version has none
        assert http.post(f"/v1/keys/kms/{key_id}/enable").status_code == 200
        assert http.post(f"/v1/keys/kms/{key_id}/enable",
                         json={"version": 1}).json()["versions"][0]["state"] == "active"
        refused_natively = http.post("/v1/decrypt", json={
            "ciphertext": blob["CiphertextBlob"].decode(), "context": {"t": "1"}})
        assert refused_natively.status_code == 409
        assert "no key material" in refused_natively.json()["error"]["message"]
        assert http.post(f"/v1/keys/kms/{key_id}/disable",
                         json={"version": 1}).status_code == 200
        assert http.post(f"/v1/keys/kms/{key_id}/disable").status_code == 200

    with pytest.raises(ClientError) as refused:
        _import(kms, key_id, os.urandom(32))
    assert _code(refused) == "IncorrectKeyMaterialException"
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingImport"

    _import(kms, key_id, material)
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (meta["KeyState"], meta["Enabled"]) == ("Enabled", True)
    assert kms.decrypt(CiphertextBlob=blob["CiphertextBlob"],
                       EncryptionContext={"t": "1"})["Plaintext"] == b"kept"
    with live.http() as http:
        assert http.get(f"/v1/keys/kms/{key_id}").json()["versions"][0]["state"] == "active"


def test_a_disabled_key_stays_disabled_after_the_material_returns(kms: Any) -> None:
    key_id = _external(kms, KeySpec="HMAC_224", KeyUsage="GENERATE_VERIFY_MAC")
    material = os.urandom(28)
    _import(kms, key_id, material)
    kms.disable_key(KeyId=key_id)
    kms.delete_imported_key_material(KeyId=key_id)
    _import(kms, key_id, material)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"
    kms.enable_key(KeyId=key_id)
    tag = kms.generate_mac(KeyId=key_id, Message=b"m", MacAlgorithm="HMAC_SHA_224")["Mac"]
    assert tag == hmac.new(material, b"m", hashlib.sha224).digest()


def test_keys_with_generated_material_are_refused(live: LiveServer, kms: Any) -> None:
    key_id = _external(kms)
    _import(kms, key_id, os.urandom(32))
    with live.http() as http:  # a version keyquorum generated joins the imported one
        assert http.post(f"/v1/keys/kms/{key_id}/rotate").status_code == 200
    with pytest.raises(ClientError) as refused:
        kms.delete_imported_key_material(KeyId=key_id)
    assert _code(refused) == "UnsupportedOperationException"
    assert "DisableKey" in refused.value.response["Error"]["Message"]


def test_deleting_imported_material_is_dual_controlled_as_importing(
        live: LiveServer, kms: Any) -> None:
    """Last in this module: it turns dual control on for ``import``."""
    key_id = _external(kms)
    _import(kms, key_id, os.urandom(32))
    with live.http() as http:
        approver = http.post("/v1/auth/tokens", json={"policies": ["approver"]}).json()["token"]
        assert http.put("/v1/sys/dual-control", json={
            "approvals": 1, "operations": ["import"]}).status_code == 200
    with pytest.raises(ClientError) as refused:
        kms.delete_imported_key_material(KeyId=key_id)
    assert _code(refused) == "AccessDeniedException"
    found = re.search(r"approval_id (\S+);", refused.value.response["Error"]["Message"])
    assert found
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    with live.http(approver) as http:
        assert http.post(f"/v1/approvals/{found.group(1)}/approve",
                         json={}).status_code == 200
    kms.meta.events.register(
        "before-sign.kms.DeleteImportedKeyMaterial",
        lambda request, **_: request.headers.__setitem__("X-Keyquorum-Approval-Id",
                                                         found.group(1)))
    kms.delete_imported_key_material(KeyId=key_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingImport"
