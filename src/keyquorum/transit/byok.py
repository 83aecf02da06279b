"""Bring your own key: ``wrapping_key``, ``keys/:name/import`` and ``import_version``.

The wrapping key is one RSA-4096 key pair per store (Vault has one per mount; one
store-wide key serves every mount), made on first use and kept as a system entry
encrypted by the barrier, so every worker and every restart answers the same
public key. An import unwraps the caller's key (``crypto.key_wrap``), checks it
against the spec by loading it, and creates the key with it (origin
``imported``) under the native ``create`` and ``import`` permissions and dual
control's ``import`` action; ``import_version`` adds it as the new primary
version of a key whose material was imported.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from keyquorum.auth.dual_settings import IMPORT
from keyquorum.crypto import key_wrap
from keyquorum.crypto.errors import CryptoError
from keyquorum.errors import InvalidRequest
from keyquorum.keys.specs import get_spec
from keyquorum.service.context import RequestContext
from keyquorum.service.core import Core
from keyquorum.service.lifecycle import NewKey
from keyquorum.storage import system_repo
from keyquorum.storage.transit_repo import DEFAULTS
from keyquorum.transit import fields
from keyquorum.transit.calls import Call
from keyquorum.transit.envelope import Answer, MethodNotAllowed
from keyquorum.transit.keyinfo import key_data, settings_of
from keyquorum.transit.types import spec_for_type

WRAPPING_ENTRY = "vault-transit/wrapping-key"
NOT_HONOURED = ("derived", "convergent_encryption", "allow_plaintext_backup", "context",
                "managed_key_name", "managed_key_id", "public_key")


def wrapping_private_key(core: Core) -> bytes:
    """DANGER: the wrapping private key (PKCS#8 DER); made and stored on first use."""
    barrier = core.barrier()
    with core.engine.begin() as conn:
        stored = system_repo.get_entry(conn, WRAPPING_ENTRY)
    if stored is None:
        made = key_wrap.generate_wrapping_key()
        try:
            with core.engine.begin() as conn:
                system_repo.insert_entry(conn, WRAPPING_ENTRY,
                                         barrier.encrypt(WRAPPING_ENTRY, made),
                                         core.clock.now())
            return made
        except IntegrityError:  # another worker made it first: use theirs
            with core.engine.begin() as conn:
                stored = system_repo.get_entry(conn, WRAPPING_ENTRY)
    assert stored is not None
    return barrier.decrypt(WRAPPING_ENTRY, stored)


async def wrapping_key(call: Call) -> Answer:
    if call.method != "GET":
        raise MethodNotAllowed("wrapping_key answers GET")
    core = call.services.core

    def work(_ctx: RequestContext) -> dict[str, Any]:
        return {"public_key": key_wrap.public_pem(wrapping_private_key(core))}

    # A public key: any valid token may read it (as any Vault token with the path may).
    return Answer(await call.run("import", None, work, permission=None))


def _material(core: Core, body: dict[str, Any], spec: str) -> bytes:
    """The caller's key, unwrapped and checked against ``spec``."""
    blob = fields.b64(body, "ciphertext", required=True, allow_empty=False) or b""
    hash_name = (fields.text(body, "hash_function", "SHA256") or "SHA256").upper()
    if hash_name not in key_wrap.HASHES:
        raise InvalidRequest(f"hash_function must be one of {', '.join(key_wrap.HASHES)}")
    try:
        raw = key_wrap.unwrap(wrapping_private_key(core), blob, hash_name)
        material = key_wrap.storage_shape(spec, raw, get_spec(spec).asymmetric)
        get_spec(spec).load(material)  # the right kind and size of key, or refused
    except (CryptoError, ValueError):  # one answer: which check failed is not said
        raise InvalidRequest("the import ciphertext does not unwrap, with the wrapping key, "
                             f"to a valid key of type {spec}") from None
    return material


async def import_key(call: Call) -> Answer:
    name, vault_name, body = call.key_name(), call.segments[1], call.body
    fields.refuse_unsupported(body, NOT_HONOURED)
    spec = spec_for_type(fields.text(body, "type", "aes256-gcm96") or "aes256-gcm96")
    exportable = fields.boolean(body, "exportable")
    rotation = fields.duration_seconds(body, "auto_rotate_period") or None
    approval_id = fields.text(body, "approval_id", max_length=64)
    core = call.services.core

    def work(ctx: RequestContext) -> dict[str, Any]:
        material = _material(core, body, spec)
        with core.dual_control.guard(ctx, IMPORT, name, {"type": spec},
                                     approval_id=approval_id) as approved:
            key = call.services.lifecycle.create(ctx, NewKey(
                name=name, spec=spec, exportable=exportable, rotation_period=rotation,
                material=material), facts=approved)
        return key_data(key, vault_name, DEFAULTS)

    return Answer(await call.run("import", name, work, permission=("create", "import"),
                                 spec=spec))


async def import_version(call: Call) -> Answer:
    name, vault_name, body = call.key_name(), call.segments[1], call.body
    if fields.integer(body, "version", None, low=0):
        raise InvalidRequest("version is not supported: an imported version becomes the "
                             "new latest version")
    approval_id = fields.text(body, "approval_id", max_length=64)
    core = call.services.core

    def work(ctx: RequestContext) -> dict[str, Any]:
        spec = core.keys.get(name).key.spec
        material = _material(core, body, spec)
        with core.dual_control.guard(ctx, IMPORT, name, {"type": spec},
                                     approval_id=approval_id) as approved:
            key = call.services.lifecycle.rotate(ctx, name, material, facts=approved)
        return key_data(key, vault_name, settings_of(core, key))

    return Answer(await call.run("import", name, work, permission=("rotate", "import"),
                                 detail={"action": "import-version"}))
