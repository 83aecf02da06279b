"""Bring your own key: GetParametersForImport, ImportKeyMaterial, DeleteImportedKeyMaterial.

Every step needs the native ``import`` permission on ``kms/<KeyId>``; importing and
deleting imported material are dual control's ``import`` action. The first import
creates the native key with the caller's material (``KeyLifecycle.create`` with
``NewKey.material``), so its record is the key's ``create`` record, with this action
in its detail. DeleteImportedKeyMaterial and the re-import of the same material are
``kms.withdrawn``'s; ``ExpirationModel``/``ValidTo`` are read and kept by ``kms.expiry``
and ``kms.imports``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from keyquorum.auth.dual_settings import IMPORT
from keyquorum.kms.call import KmsCall
from keyquorum.kms.errors import KmsStateError, unsupported
from keyquorum.kms.expiry import DOES_NOT_EXPIRE, EXPIRES, requested_expiry
from keyquorum.kms.ids import Target
from keyquorum.kms.imports import (
    WRAPPING_ALGORITHMS,
    WRAPPING_KEY_BITS,
    PendingKey,
    drop_pending,
    new_parameters,
    set_expiry,
    unwrap,
)
from keyquorum.kms.ops_crypto import b64
from keyquorum.kms.registry import operation
from keyquorum.kms.withdrawn import find_withdrawn, restore, withdraw
from keyquorum.service.context import RequestContext
from keyquorum.service.core import Core
from keyquorum.service.lifecycle import NewKey

MAX_TOKEN = 6144
MAX_WRAPPED = 6144


def _pending(target: Target, identifier: str, core: Core | None = None) -> PendingKey:
    """The key waiting for material: a new EXTERNAL key, or (given ``core``) a key whose
    imported material was deleted (as a PendingKey of its id and spec)."""
    if target.pending is not None:
        return target.pending
    key = target.require(identifier)  # NotFoundException when there is no such key
    if core is not None:
        with core.engine.connect() as conn:
            if find_withdrawn(conn, core.barrier(), key.id) is not None:
                return PendingKey(key_id=key.id, spec=key.spec, description="", labels={},
                                  created_at=key.created_at, created_by=None)
    raise KmsStateError("this key's material is already in keyquorum: a key accepts one "
                        "import, when it is created with Origin EXTERNAL",
                        "KMSInvalidStateException")


@operation("GetParametersForImport", "import")
async def get_parameters_for_import(call: KmsCall) -> dict[str, Any]:
    algorithm = call.choice("WrappingAlgorithm", (*WRAPPING_ALGORITHMS, "SM2PKE",
                                                  "RSA_AES_KEY_WRAP_SHA_1"))
    key_spec = call.choice("WrappingKeySpec", (*WRAPPING_KEY_BITS, "SM2"))
    if algorithm not in WRAPPING_ALGORITHMS or key_spec not in WRAPPING_KEY_BITS:
        raise unsupported("wrap key material with RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256 or "
                          "RSA_AES_KEY_WRAP_SHA_256 and an RSA_2048/3072/4096 wrapping key")
    assert algorithm is not None and key_spec is not None
    target = await call.target()
    identifier = str(call.body.get("KeyId"))
    core = call.services.core

    def work(_ctx: RequestContext) -> dict[str, Any]:
        pending = _pending(target, identifier, core)
        made = new_parameters(core.barrier(), pending.key_id, algorithm, key_spec,
                              core.clock.now())
        return {"KeyId": call.names.key_arn(pending.key_id), "ImportToken": b64(made.token),
                "PublicKey": b64(made.public_key_der), "ParametersValidTo": made.valid_to}

    return await call.run("import", target.name, work,  # type: ignore[no-any-return]
                          permission="import" if target.name else None)


@operation("ImportKeyMaterial", "import")
async def import_key_material(call: KmsCall) -> dict[str, Any]:
    model = call.choice("ExpirationModel", (EXPIRES, DOES_NOT_EXPIRE))
    if call.body.get("ImportType") not in (None, "EXISTING_KEY_MATERIAL"):
        raise unsupported("a key accepts one import, when it is created; new key "
                          "material is a new key")
    token = call.blob("ImportToken", limit=MAX_TOKEN)
    wrapped = call.blob("EncryptedKeyMaterial", limit=MAX_WRAPPED)
    assert token is not None and wrapped is not None
    target = await call.target()
    identifier = str(call.body.get("KeyId"))
    services = call.services
    core = services.core
    # The approved request is this exact material for this key with this expiry (nothing
    # secret: a hash of the wrapped bytes).
    params = {"key_id": identifier, "material_sha256": hashlib.sha256(wrapped).hexdigest(),
              "expiration_model": str(model), "valid_to": str(call.body.get("ValidTo"))}

    # Refused before anything runs (AWS's ValidationException); the service clock, which
    # is the one the material's expiry is checked against.
    valid_to = requested_expiry(model, call.body.get("ValidTo"), core.clock.now())

    def work(ctx: RequestContext) -> dict[str, Any]:
        now = core.clock.now()
        pending = _pending(target, identifier, core)
        material = unwrap(core.barrier(), pending.key_id, token, wrapped, now, pending.spec)
        if target.key is not None:  # the same material back into a key that had it
            with core.dual_control.guard(ctx, IMPORT, pending.name, params,
                                         approval_id=call.approval_id) as approved:
                restore(core, ctx, target.key, material, valid_to, facts=approved)
            return {}
        with core.dual_control.guard(ctx, IMPORT, pending.name, params,
                                     approval_id=call.approval_id) as approved:
            _create(ctx, pending, material, valid_to, approved)
        with core.engine.begin() as conn:
            drop_pending(conn, pending.key_id)
        return {}

    def _create(ctx: RequestContext, pending: PendingKey, material: bytes,
                valid_to: float | None, approved: Mapping[str, str]) -> None:
        # The expiry is in storage before the key exists, so no use of the key can
        # find it without its expiry; a failed create takes it back out.
        with core.engine.begin() as conn:
            set_expiry(conn, pending.key_id, valid_to, core.clock.now())
        try:
            services.lifecycle.create(ctx, NewKey(
                name=pending.name, spec=pending.spec, description=pending.description or None,
                labels=pending.labels, key_id=pending.key_id, material=material),
                facts=approved)
        except BaseException:
            with core.engine.begin() as conn:
                set_expiry(conn, pending.key_id, None, core.clock.now())
            raise

    await call.run("import", target.name, work, permission="import" if target.name else None)
    return {}


@operation("DeleteImportedKeyMaterial", "import")
async def delete_imported_key_material(call: KmsCall) -> dict[str, Any]:
    if call.body.get("KeyMaterialId"):
        raise unsupported("KeyMaterialId is not supported: a keyquorum KMS key holds one "
                          "imported key material")
    target = await call.target()
    identifier = str(call.body.get("KeyId"))
    core = call.services.core
    params = {"key_id": identifier, "action": "DeleteImportedKeyMaterial"}

    def work(ctx: RequestContext) -> dict[str, Any]:
        key = target.require(identifier)
        with core.dual_control.guard(ctx, IMPORT, key.name, params,
                                     approval_id=call.approval_id) as approved:
            withdraw(core, ctx, key, facts=approved)
        return {"KeyId": call.names.key_arn(key.id)}

    answer: dict[str, Any] = await call.run(
        "import", target.name, work, permission="import" if target.name else None)
    return answer
