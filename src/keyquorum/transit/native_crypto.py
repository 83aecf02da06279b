"""Transit's crypto calls on the native crypto route (``Runner.run_crypto``).

encrypt and decrypt (here), and rewrap, sign, verify and hmac (``crypto``,
``signing``), single or in ``batch_input``, take the native crypto front's own
pipeline (``run_native``), not one ``Runner.execute`` per item: the same typed
items (``EncryptItem``, ``SignItem``, ...), the same authorization per item (with
its context), cheap items on the event loop, and one audit record per group of
like items (with this front's ``detail``: the Vault API and path). A Vault item
becomes a native item (``associated_data`` → context, ``vault:v<N>:`` → ``kq1:``,
``input`` → ``message``); a native answer becomes Vault's.

An item Vault-level checks refuse (a refused parameter, a ``vault:v<N>:`` prefix
that disagrees with the ciphertext's header) still goes through the pipeline, as
an item it refuses, so it is authorized and audited like every other; its answer
carries the Vault-level message.
"""

from __future__ import annotations

import contextlib
from typing import Any

from starlette.concurrency import run_in_threadpool

from keyquorum.api.crypto_routes import KEY_ROUTES, KEYLESS_ROUTES, CryptoRoute
from keyquorum.errors import Conflict, InvalidCiphertext, InvalidRequest, KeyquorumError
from keyquorum.keys.ciphertext import parse_ciphertext
from keyquorum.keys.models import Key
from keyquorum.service.context import RequestContext
from keyquorum.service.lifecycle import NewKey
from keyquorum.storage import keys_repo
from keyquorum.transit import fields
from keyquorum.transit.calls import API, Call, batch_items
from keyquorum.transit.ciphertext import VAULT_PREFIX, split_vault, to_vault
from keyquorum.transit.crypto import (
    AAD_FIELD,
    REFUSED,
    check_key_version,
    context_of,
    native_ciphertext,
    reference_of,
)
from keyquorum.transit.envelope import Answer
from keyquorum.transit.types import spec_for_type

_REFUSED_ITEM = {"vault_refused": True}  # fails the native item model: invalid_request
_BAD_CIPHERTEXT = {"ciphertext": "kq1:"}  # fails decryption: invalid_ciphertext


def _translated(translate: Any, item: dict[str, Any]
                ) -> tuple[dict[str, Any], KeyquorumError | None]:
    """The native item, or a stand-in the pipeline refuses with the same error code."""
    try:
        return translate(item), None
    except InvalidCiphertext as error:
        return _BAD_CIPHERTEXT, error
    except KeyquorumError as error:
        return _REFUSED_ITEM, error


def _encrypt_item(key: Key | None, item: dict[str, Any]) -> dict[str, Any]:
    fields.refuse_unsupported(item, REFUSED)
    fields.b64(item, "plaintext", required=True)  # Vault's message for bad base64
    check_key_version(item, key, "encryption")
    native: dict[str, Any] = {"plaintext": item["plaintext"]}
    context = context_of(item)
    if context is not None:
        native["context"] = context
    return native


def _encrypted(answer: dict[str, Any], _item: dict[str, Any]) -> dict[str, Any]:
    return {"ciphertext": to_vault(answer["ciphertext"], answer["key_version"]),
            "key_version": answer["key_version"]}


def _decrypt_item(call: Call, name: str, item: dict[str, Any]) -> dict[str, Any]:
    fields.refuse_unsupported(item, REFUSED)

    def latest() -> int | None:  # the cache only: never a storage read on the loop
        loaded = call.services.core.keys.cached(name)
        return loaded.key.primary_version if loaded is not None else None

    native = native_ciphertext(item, latest)
    result: dict[str, Any] = {"ciphertext": native}
    context = context_of(item)
    if context is not None:
        result["context"] = context
    return result


def _decrypted(answer: dict[str, Any], _item: dict[str, Any]) -> dict[str, Any]:
    return {"plaintext": answer["plaintext"]}


def _vault_error(answer: dict[str, Any]) -> str:
    """A native item's error in Vault's words (as ``envelope.vault_message`` words them)."""
    error = answer.get("error") or {}
    message = str(error.get("message", "internal error"))
    return f"permission denied: {message}" if error.get("code") == "forbidden" else message


async def key_at_hand(call: Call, name: str) -> Key | None:
    """The path's key for translating items (its spec, id, latest version): the cache,
    else one read off the event loop; None when it cannot be had (missing, sealed), and
    the pipeline then answers that, audited, for every item."""
    loaded = call.services.core.keys.cached(name)
    if loaded is not None:
        return loaded.key
    try:
        return (await run_in_threadpool(call.services.core.keys.get, name)).key
    except KeyquorumError:
        return None


async def _run(call: Call, segment: str, name: str, translate: Any, shape: Any) -> Answer:
    return await run_native(call, KEY_ROUTES[segment], name, translate, shape,
                            failed_status=400)


async def run_native(call: Call, route: CryptoRoute, name: str, translate: Any, shape: Any,
                     *, failed_status: int = 200,
                     failed_item: dict[str, Any] | None = None) -> Answer:
    """One request, single or ``batch_input``, through ``Runner.run_crypto``.

    ``translate`` makes the native item of a Vault item (raising a ``KeyquorumError``
    refuses that item alone, through the pipeline); ``shape(answer, item)`` makes
    Vault's result. A batch answers every result, ``reference`` echoed, a failed one as
    ``{**failed_item, "error": ...}``, with ``failed_status`` when any failed (Vault:
    400 for encrypt and decrypt, 200 for rewrap, sign, verify and hmac)."""
    fields.refuse_unsupported(call.body, REFUSED)
    runner = call.runner
    call.ctx.detail = {"api": API, "path": call.path[:256]}
    items = batch_items(call.body, call.services.core.settings.max_batch_items)
    if items is None:
        native, refusal = _translated(translate, call.body)
        try:
            answer = await runner.run_crypto(call.ctx, call.authorization, route, name, native)
        except KeyquorumError as error:
            if refusal is not None and error.code == refusal.code:
                raise refusal from None  # audited by the pipeline; answered in Vault's words
            raise
        return Answer(shape(answer, call.body))
    natives: list[dict[str, Any]] = []
    refused: dict[int, str] = {}
    for index, item in enumerate(items):
        native, refusal = _translated(translate, item)
        natives.append(native)
        if refusal is not None:
            refused[index] = refusal.message
    answer = await runner.run_crypto(call.ctx, call.authorization, route, name,
                                     {"batch": natives})
    results: list[dict[str, Any]] = []
    for index, (item, result) in enumerate(zip(items, answer["results"], strict=True)):
        shaped = {**(failed_item or {}), "error": refused.get(index) or _vault_error(result)} \
            if "error" in result else shape(result, item)
        shaped["reference"] = reference_of(item)
        results.append(shaped)
    failed = any("error" in result for result in results)
    return Answer({"batch_results": results}, status=failed_status if failed else 200)


async def encrypt(call: Call) -> Answer:
    name = call.key_name()
    if call.services.core.keys.cached(name) is None:
        await upsert(call, name)
    key = await key_at_hand(call, name)
    if _is_rsa_encryption(key):
        return await _run(call, "encrypt-oaep", name,
                          lambda item: _oaep_encrypt_item(key, item), _oaep_encrypted)
    return await _run(call, "encrypt", name, lambda item: _encrypt_item(key, item), _encrypted)


# -- RSA encryption keys: Vault's RSA-OAEP (SHA-256) over the native OAEP verbs -------------


def _is_rsa_encryption(key: Key | None) -> bool:
    """A native RSA key of purpose encrypt (transit-made rsa-* keys sign)."""
    return key is not None and key.purpose == "encrypt" and key.spec.startswith("rsa-")


def _no_aad(item: dict[str, Any]) -> None:
    if fields.b64(item, AAD_FIELD):
        raise InvalidRequest("associated_data is not supported with RSA keys")


def _oaep_encrypt_item(key: Key | None, item: dict[str, Any]) -> dict[str, Any]:
    fields.refuse_unsupported(item, REFUSED)
    fields.b64(item, "plaintext", required=True)
    check_key_version(item, key, "encryption")
    _no_aad(item)
    return {"plaintext": item["plaintext"]}  # OAEP with SHA-256, as Vault


def _oaep_encrypted(answer: dict[str, Any], _item: dict[str, Any]) -> dict[str, Any]:
    return {"ciphertext": f"{VAULT_PREFIX}{answer['key_version']}:{answer['ciphertext']}",
            "key_version": answer["key_version"]}


def _oaep_decrypt_item(item: dict[str, Any]) -> dict[str, Any]:
    fields.refuse_unsupported(item, REFUSED)
    _no_aad(item)
    try:
        number, raw = split_vault(item.get("ciphertext"))
    except InvalidCiphertext:
        # A block too short for any key: the pipeline refuses it as invalid_ciphertext,
        # authorized and audited like every other item.
        return {"ciphertext": "AAAA"}
    return {"ciphertext": fields.encode_b64(raw), "key_version": number}


def _oaep_decrypted(answer: dict[str, Any], _item: dict[str, Any]) -> dict[str, Any]:
    return {"plaintext": answer["plaintext"]}


async def upsert(call: Call, name: str) -> None:
    """Vault's encrypt creates a missing key when the caller may create it ("upsert"):
    here when the token holds ``create`` on the name, as an audited create of its own
    (``type``, aes256-gcm96 by default). Otherwise nothing happens and the encrypt
    answers that the key does not exist."""
    core = call.services.core

    def missing_and_allowed(ctx: RequestContext) -> str | None:
        with core.engine.connect() as conn:
            if core.sealed or keys_repo.get_key(conn, name=name) is not None:
                return None
        spec = spec_for_type(fields.text(call.body, "type", "aes256-gcm96") or "aes256-gcm96")
        identity = call.identity(ctx)
        return spec if core.authorizer.allowed(identity, "create", name, client=ctx.client,
                                               spec=spec) else None

    probe = RequestContext(request_id=call.ctx.request_id, client=call.ctx.client)
    try:
        spec = await run_in_threadpool(missing_and_allowed, probe)
    except KeyquorumError:
        return  # a bad token or type: the encrypt itself answers (and audits) the refusal
    if spec is None:
        return
    create = RequestContext(request_id=call.ctx.request_id, client=call.ctx.client,
                            detail={"api": API, "path": call.path[:256], "upsert": "true"})

    def work(ctx: RequestContext) -> None:
        call.services.lifecycle.create(ctx, NewKey(name=name, spec=spec))

    with contextlib.suppress(Conflict):  # made meanwhile by another request: use it
        await call.runner.execute(create, "create", name, work, permission="create",
                                  credential=call.identity_on_loop,
                                  authorization=call.authorization, in_thread=True, spec=spec)


def _rewrap_item(call: Call, name: str, key: Key | None,
                 item: dict[str, Any]) -> dict[str, Any]:
    fields.refuse_unsupported(item, REFUSED)
    if key is None and not call.services.core.sealed:
        # reencrypt names no key: without this, another key's ciphertext would pass
        raise InvalidRequest(f"no key named {name}")
    check_key_version(item, key, "rewrapping")
    native = native_ciphertext(item, lambda: key.primary_version if key else None)
    if key is not None and str(parse_ciphertext(native)[0].key_id) != key.id:
        raise InvalidCiphertext("the ciphertext belongs to another key")
    result: dict[str, Any] = {"ciphertext": native}
    context = context_of(item)
    if context is not None:  # the destination keeps it: same key, same context
        result["context"] = context
    return result


async def rewrap(call: Call) -> Answer:
    """The native ``reencrypt`` (same key, same context: it needs ``reencrypt`` only,
    checked by the service on the key the ciphertext names, the path's key)."""
    name = call.key_name()
    key = await key_at_hand(call, name)
    return await run_native(call, KEYLESS_ROUTES["/v1/reencrypt"], name,
                            lambda item: _rewrap_item(call, name, key, item), _encrypted)


async def decrypt(call: Call) -> Answer:
    name = call.key_name()
    if _is_rsa_encryption(await key_at_hand(call, name)):
        return await _run(call, "decrypt-oaep", name, _oaep_decrypt_item, _oaep_decrypted)
    return await _run(call, "decrypt", name, lambda item: _decrypt_item(call, name, item),
                      _decrypted)



