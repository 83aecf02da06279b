"""Imported key material that expires (ExpirationModel KEY_MATERIAL_EXPIRES + ValidTo),
through boto3 against a live server whose clock the tests move (``--unsafe-test-clock``).

Past ValidTo the material is refused at once (the use check) and erased by the
scheduler's sweep exactly as DeleteImportedKeyMaterial erases it, with one audit
record; re-importing the same material with a new ValidTo restores the key."""

from __future__ import annotations

import datetime
import os
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.kms.live import LiveServer
from tests.kms.test_import import _external, _wrap

from keyquorum.kms.imports import expiry_of
from keyquorum.storage import keys_repo

EXPIRES = "KEY_MATERIAL_EXPIRES"
NO_EXPIRY = "KEY_MATERIAL_DOES_NOT_EXPIRE"


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def _now(live: LiveServer) -> float:
    """The server's service clock (moved by earlier tests of this module)."""
    return float(live.core.clock.now())


def _at(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC)


def _import(kms: Any, key_id: str, material: bytes, **expiry: Any) -> None:
    params = kms.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                           WrappingKeySpec="RSA_2048")
    kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"],
                            EncryptedKeyMaterial=_wrap(params["PublicKey"], material,
                                                       "RSAES_OAEP_SHA_256"), **expiry)


def _advance(live: LiveServer, seconds: float) -> None:
    """Move the test clock and run the scheduler once (as tests/inprocess_server does)."""
    with live.http() as http:
        answer = http.post("/v1/sys/unsafe/clock", json={"advance_seconds": seconds})
    answer.raise_for_status()


def _material(live: LiveServer, key_id: str) -> bytes | None:
    with live.core.engine.connect() as conn:
        blob: bytes | None = keys_repo.get_material(conn, key_id, 1)
    return blob


def _stored_expiry(live: LiveServer, key_id: str) -> float | None:
    with live.core.engine.connect() as conn:
        return expiry_of(conn, key_id)


def _expiry_records(live: LiveServer, key_id: str) -> list[dict[str, Any]]:
    return [r for r in live.audit(key=f"kms/{key_id}", operation="import")
            if (r.get("detail") or {}).get("action") == "KeyMaterialExpired"]


def test_material_expires_is_erased_once_and_comes_back_with_a_new_valid_to(
        live: LiveServer, kms: Any) -> None:
    key_id = _external(kms)
    material = os.urandom(32)
    valid_to = _now(live) + 3600
    _import(kms, key_id, material, ExpirationModel=EXPIRES, ValidTo=_at(valid_to))

    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (meta["KeyState"], meta["ExpirationModel"]) == ("Enabled", EXPIRES)
    assert abs(meta["ValidTo"].timestamp() - valid_to) < 1
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"kept", EncryptionContext={"t": "1"})
    assert kms.decrypt(CiphertextBlob=blob["CiphertextBlob"],
                       EncryptionContext={"t": "1"})["Plaintext"] == b"kept"
    _advance(live, 1800)  # half way: nothing happens
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    assert _expiry_records(live, key_id) == []

    _advance(live, 1801)  # past ValidTo: the sweep erases the material
    for call in (lambda: kms.encrypt(KeyId=key_id, Plaintext=b"x"),
                 lambda: kms.decrypt(CiphertextBlob=blob["CiphertextBlob"],
                                     EncryptionContext={"t": "1"}),
                 lambda: kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")):
        with pytest.raises(ClientError) as refused:
            call()
        assert _code(refused) == "KMSInvalidStateException"
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (meta["KeyState"], meta["Enabled"]) == ("PendingImport", False)
    assert _material(live, key_id) is None
    assert _stored_expiry(live, key_id) is None
    with live.http() as http:
        version = http.get(f"/v1/keys/kms/{key_id}").json()["versions"][0]
        assert version["state"] == "suspended"
    records = _expiry_records(live, key_id)
    assert len(records) == 1
    assert records[0]["client"] == "scheduler"
    assert records[0]["detail"]["valid_to"] == _at(valid_to).isoformat()
    _advance(live, 60)  # later sweeps find nothing more to do
    assert len(_expiry_records(live, key_id)) == 1

    with pytest.raises(ClientError) as refused:  # only the same material comes back
        _import(kms, key_id, os.urandom(32), ExpirationModel=NO_EXPIRY)
    assert _code(refused) == "IncorrectKeyMaterialException"
    new_valid_to = _now(live) + 7200
    _import(kms, key_id, material, ExpirationModel=EXPIRES, ValidTo=_at(new_valid_to))
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (meta["KeyState"], meta["Enabled"]) == ("Enabled", True)
    assert abs(meta["ValidTo"].timestamp() - new_valid_to) < 1
    assert kms.decrypt(CiphertextBlob=blob["CiphertextBlob"],
                       EncryptionContext={"t": "1"})["Plaintext"] == b"kept"
    _advance(live, 7201)  # the new expiry is acted on too, once more
    assert len(_expiry_records(live, key_id)) == 2
    with pytest.raises(ClientError) as refused:
        kms.encrypt(KeyId=key_id, Plaintext=b"x")
    assert _code(refused) == "KMSInvalidStateException"


def test_use_after_valid_to_is_refused_before_the_sweep_runs(
        live: LiveServer, kms: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    key_id = _external(kms, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    material = os.urandom(32)
    _import(kms, key_id, material, ExpirationModel=EXPIRES, ValidTo=_at(_now(live) + 600))
    kms.generate_mac(KeyId=key_id, Message=b"m", MacAlgorithm="HMAC_SHA_256")
    with live.http() as http:  # natively too: the key is warm in both paths
        assert http.post(f"/v1/keys/kms/{key_id}/mac",
                         json={"message": "bQ=="}).status_code == 200

    import keyquorum.service.scheduler as scheduler

    monkeypatch.setattr(scheduler, "sweep_expired", lambda _core, now=None: [])
    _advance(live, 601)
    with pytest.raises(ClientError) as refused:
        kms.generate_mac(KeyId=key_id, Message=b"m", MacAlgorithm="HMAC_SHA_256")
    assert _code(refused) == "KMSInvalidStateException"
    assert "expired" in refused.value.response["Error"]["Message"]
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingImport"
    with live.http() as http:
        native = http.post(f"/v1/keys/kms/{key_id}/mac", json={"message": "bQ=="})
        assert native.status_code == 409
    assert _material(live, key_id) is not None  # not swept: the use check refused
    assert _expiry_records(live, key_id) == []

    monkeypatch.undo()
    _advance(live, 1)
    assert _material(live, key_id) is None
    assert len(_expiry_records(live, key_id)) == 1


@pytest.mark.parametrize("expiry", [
    {"ExpirationModel": EXPIRES, "ValidTo": -10},           # in the past
    {"ExpirationModel": EXPIRES, "ValidTo": 366 * 86400},   # more than 365 days ahead
    {"ExpirationModel": EXPIRES},                           # ValidTo missing
    {},                                                     # AWS's default is EXPIRES
    {"ExpirationModel": NO_EXPIRY, "ValidTo": 3600},        # ValidTo with DOES_NOT_EXPIRE
    {"ExpirationModel": "NEVER"},                           # not in the enum
], ids=["past", "beyond-365-days", "no-valid-to", "default-model", "valid-to-no-expiry",
        "unknown-model"])
def test_bad_expiry_is_refused_and_nothing_is_stored(
        live: LiveServer, root_key: dict[str, Any], expiry: dict[str, Any]) -> None:
    kms = live.kms(root_key, validate=False)  # botocore would refuse some before sending
    key_id = _external(kms)
    if "ValidTo" in expiry:  # relative to the server's clock
        expiry = {**expiry, "ValidTo": _now(live) + expiry["ValidTo"]}
    params = kms.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                           WrappingKeySpec="RSA_2048")
    wrapped = _wrap(params["PublicKey"], os.urandom(32), "RSAES_OAEP_SHA_256")
    with pytest.raises(ClientError) as refused:
        kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"],
                                EncryptedKeyMaterial=wrapped, **expiry)
    assert _code(refused) == "ValidationException"
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingImport"
    assert _stored_expiry(live, key_id) is None
    # the same token and material still import: nothing was used up or stored
    kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"],
                            EncryptedKeyMaterial=wrapped, ExpirationModel=NO_EXPIRY)
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (meta["KeyState"], meta["ExpirationModel"]) == ("Enabled", NO_EXPIRY)
    assert "ValidTo" not in meta
    assert _stored_expiry(live, key_id) is None


def test_valid_to_is_read_as_aws_json_sends_timestamps() -> None:
    """Epoch seconds (botocore's form), as a number or text, and ISO 8601 text."""
    from keyquorum.kms.errors import KmsRequestError
    from keyquorum.kms.expiry import requested_expiry

    now = 1_800_000_000.0
    assert requested_expiry(EXPIRES, now + 60, now) == now + 60
    assert requested_expiry(None, str(now + 60), now) == now + 60
    assert requested_expiry(EXPIRES, _at(now + 60).isoformat(), now) == now + 60
    assert requested_expiry(EXPIRES, _at(now + 60).strftime("%Y-%m-%dT%H:%M:%SZ"),
                            now) == now + 60
    assert requested_expiry(NO_EXPIRY, None, now) is None
    for bad, kind in (("tomorrow", "SerializationException"), (True, "SerializationException"),
                      (now, "ValidationException"),  # not in the future
                      (now + 365 * 86400 + 1, "ValidationException")):
        with pytest.raises(KmsRequestError) as refused:
            requested_expiry(EXPIRES, bad, now)
        assert refused.value.aws_type == kind
    assert requested_expiry(EXPIRES, now + 365 * 86400, now) == now + 365 * 86400
