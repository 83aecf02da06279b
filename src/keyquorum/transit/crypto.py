"""``transit/rewrap`` and ``datakey``, and what all transit encryption shares: the
``associated_data`` mapping and running items one ``Runner.execute`` each (``each``;
encrypt and decrypt take the native crypto route instead, ``native_crypto``).

**associated_data ↔ context.** Vault's ``associated_data`` (AAD for AES-GCM and
ChaCha20-Poly1305) becomes keyquorum's encryption context
``{"associated_data": <standard base64 of the AAD>}``: keyquorum authenticates
the canonical context as AAD, so the ciphertext is bound to it exactly as Vault
binds it to its AAD, and the native API decrypts the same ciphertext with that
context. Vault's ``context`` (key derivation) and ``convergent_encryption`` are
refused: keyquorum keys are never derived.

Each item (a single request is one item) runs through the pipeline with the
native twin's permission (rewrap → ``reencrypt``, checked by the service on the
key the ciphertext names; datakey → ``datakey``) and its own audit record; a
batch item fails alone, and the answer is 400 when any item failed, as Vault
answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from keyquorum.errors import InvalidCiphertext, InvalidRequest, KeyquorumError
from keyquorum.keys.ciphertext import parse_ciphertext
from keyquorum.service.context import RequestContext
from keyquorum.transit import fields
from keyquorum.transit.calls import Call, batch_items
from keyquorum.transit.ciphertext import from_vault, to_vault
from keyquorum.transit.envelope import Answer, MethodNotAllowed, vault_message

AAD_FIELD = "associated_data"
MAX_AAD_BYTES = 6 * 1024
DATAKEY_BITS = (128, 256, 512)
REFUSED = ("context", "nonce", "convergent_encryption", "derived", "partial_failure_response_code")

Item = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def context_of(item: dict[str, Any]) -> dict[str, str] | None:
    """keyquorum's encryption context for a Vault item's ``associated_data``."""
    aad = fields.b64(item, AAD_FIELD)
    if aad is None or not aad:
        return None
    if len(aad) > MAX_AAD_BYTES:
        raise InvalidRequest(f"associated_data is at most {MAX_AAD_BYTES} bytes")
    return {AAD_FIELD: fields.encode_b64(aad)}


def check_key_version(item: dict[str, Any]) -> None:
    version = fields.integer(item, "key_version", None, low=0)
    if version:  # keyquorum encrypts with the latest version only
        raise InvalidRequest("key_version is not supported for encryption: keyquorum always "
                             "encrypts with the latest version")


async def each(call: Call, item_work: Item, *,
               failed_item: dict[str, Any] | None = None) -> Answer:
    """Run a single request or every ``batch_input`` item; items fail alone.

    As Vault answers these (rewrap, sign, verify, hmac): 200 with every result, a
    failed item carrying ``error`` (and ``failed_item``'s fields: verify's
    ``valid: false``), ``reference`` always echoed ("" when not given)."""
    fields.refuse_unsupported(call.body, REFUSED)
    items = batch_items(call.body, call.services.core.settings.max_batch_items)
    if items is None:
        return Answer(await item_work(call.body))
    results: list[dict[str, Any]] = []
    call.in_batch = True
    for item in items:
        try:
            fields.refuse_unsupported(item, REFUSED)
            result = await item_work(item)
        except KeyquorumError as error:
            result = {**(failed_item or {}), "error": vault_message(error)}
        result["reference"] = reference_of(item)
        results.append(result)
    return Answer({"batch_results": results})


def reference_of(item: dict[str, Any]) -> Any:
    """The item's ``reference``, echoed as Vault does ("" when not given)."""
    reference = item.get("reference")
    return "" if reference is None else reference


def native_ciphertext(item: dict[str, Any], latest: Callable[[], int | None]) -> str:
    """The ``kq1:`` ciphertext of an item; its ``vault:v<N>:`` prefix must name the
    version in the authenticated header (``latest`` gives the key's latest version, or
    None when it is not at hand, only to word the refusal as Vault does)."""
    number, native = from_vault(item.get("ciphertext"))
    try:
        header = parse_ciphertext(native)[0]
    except Exception as exc:  # every malformed ciphertext gets the one vague answer
        raise InvalidCiphertext("invalid ciphertext") from exc
    if number and number != header.key_version:
        newest = latest()
        if newest is not None and number > newest:
            raise InvalidCiphertext("invalid ciphertext: version is too new")
        raise InvalidCiphertext("invalid ciphertext: the version prefix does not match")
    return native


async def rewrap(call: Call) -> Answer:
    name = call.key_name()
    ops = call.services.operations
    core = call.services.core

    async def one(item: dict[str, Any]) -> dict[str, Any]:
        def work(ctx: RequestContext) -> dict[str, Any]:
            check_key_version(item)
            native = native_ciphertext(item, lambda: core.keys.get(name).key.primary_version)
            header = parse_ciphertext(native)[0]
            if str(header.key_id) != core.keys.get(name).key.id:
                raise InvalidCiphertext("the ciphertext belongs to another key")
            context = context_of(item)
            done = ops.reencrypt(ctx, native, context, destination_key=None,
                                 destination_context=context)
            assert done.version is not None
            return {"ciphertext": to_vault(done.ciphertext, done.version),
                    "key_version": done.version}

        # reencrypt, unchanged key and context: the native twin needs reencrypt only,
        # checked by the service on the key the ciphertext names (the path's key).
        return await call.run_item("reencrypt", name, work, permission=None)

    return await each(call, one)


async def datakey(call: Call) -> Answer:
    """``datakey/plaintext/:name`` and ``datakey/wrapped/:name``."""
    segs = call.segments
    if len(segs) != 3 or segs[1] not in ("plaintext", "wrapped"):
        raise InvalidRequest("use datakey/plaintext/:name or datakey/wrapped/:name")
    with_plaintext = segs[1] == "plaintext"
    name = call.key_name(2)
    bits = fields.integer(call.body, "bits", 256, low=1, high=4096)
    if bits not in DATAKEY_BITS:
        raise InvalidRequest("bits must be 128, 256 or 512")
    fields.refuse_unsupported(call.body, REFUSED)
    context = context_of(call.body)
    assert bits is not None
    ops = call.services.operations

    def work(ctx: RequestContext) -> dict[str, Any]:
        call.runner.authorize(ctx, "datakey", name, context=context)
        done = ops.datakey(ctx, name, bits, context, with_plaintext=with_plaintext)
        assert done.version is not None
        data: dict[str, Any] = {"ciphertext": to_vault(done.ciphertext, done.version),
                                "key_version": done.version}
        if done.plaintext is not None:
            data["plaintext"] = fields.encode_b64(done.plaintext)
        return data

    return Answer(await call.run("datakey", name, work, permission=None))


def post_only(call: Call) -> None:
    if call.method not in ("POST", "PUT"):
        raise MethodNotAllowed(f"{call.segments[0]} answers POST")
