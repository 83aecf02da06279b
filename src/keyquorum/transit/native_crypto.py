"""``transit/encrypt`` and ``decrypt`` on the native crypto route (``Runner.run_crypto``).

These are the hot path, single or in ``batch_input``, so they take the native
crypto front's own pipeline, not one ``Runner.execute`` per item: the same typed
items (``EncryptItem``, ``DecryptItem``), the same authorization per item (with
its context), cheap items on the event loop, and one audit record per group of
like items (with this front's ``detail``: the Vault API and path). A Vault item
becomes a native item (``associated_data`` → context, ``vault:v<N>:`` → ``kq1:``);
a native answer becomes Vault's.

An item Vault-level checks refuse (a refused parameter, a ``vault:v<N>:`` prefix
that disagrees with the ciphertext's header) still goes through the pipeline, as
an item it refuses, so it is authorized and audited like every other; its answer
carries the Vault-level message.
"""

from __future__ import annotations

import contextlib
from typing import Any

from starlette.concurrency import run_in_threadpool

from keyquorum.api.crypto_routes import KEY_ROUTES
from keyquorum.errors import Conflict, InvalidCiphertext, KeyquorumError
from keyquorum.service.context import RequestContext
from keyquorum.service.lifecycle import NewKey
from keyquorum.storage import keys_repo
from keyquorum.transit import fields
from keyquorum.transit.calls import API, Call, batch_items
from keyquorum.transit.ciphertext import to_vault
from keyquorum.transit.crypto import (
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


def _encrypt_item(item: dict[str, Any]) -> dict[str, Any]:
    fields.refuse_unsupported(item, REFUSED)
    fields.b64(item, "plaintext", required=True)  # Vault's message for bad base64
    check_key_version(item)
    native: dict[str, Any] = {"plaintext": item["plaintext"]}
    context = context_of(item)
    if context is not None:
        native["context"] = context
    return native


def _encrypted(answer: dict[str, Any]) -> dict[str, Any]:
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


def _decrypted(answer: dict[str, Any]) -> dict[str, Any]:
    return {"plaintext": answer["plaintext"]}


def _vault_error(answer: dict[str, Any]) -> str:
    error = answer.get("error") or {}
    return str(error.get("message", "internal error"))


async def _run(call: Call, segment: str, name: str, translate: Any, shape: Any) -> Answer:
    fields.refuse_unsupported(call.body, REFUSED)
    route = KEY_ROUTES[segment]
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
        return Answer(shape(answer))
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
        shaped = {"error": refused.get(index) or _vault_error(result)} if "error" in result \
            else shape(result)
        shaped["reference"] = reference_of(item)
        results.append(shaped)
    failed = any("error" in result for result in results)  # Vault: 400 for these two
    return Answer({"batch_results": results}, status=400 if failed else 200)


async def encrypt(call: Call) -> Answer:
    name = call.key_name()
    if call.services.core.keys.cached(name) is None:
        await upsert(call, name)
    return await _run(call, "encrypt", name, _encrypt_item, _encrypted)


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
                                  credential=call.identity,
                                  authorization=call.authorization, in_thread=True, spec=spec)


async def decrypt(call: Call) -> Answer:
    name = call.key_name()
    return await _run(call, "decrypt", name, lambda item: _decrypt_item(call, name, item),
                      _decrypted)



