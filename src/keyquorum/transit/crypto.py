"""``transit/datakey``, and what all transit encryption shares: the
``associated_data`` mapping, ``vault:v<N>:`` ciphertexts, ``reference`` (encrypt,
decrypt and rewrap run on the native crypto route, ``native_crypto``).

**associated_data ↔ context.** Vault's ``associated_data`` (AAD for AES-GCM and
ChaCha20-Poly1305) becomes keyquorum's encryption context
``{"associated_data": <standard base64 of the AAD>}``: keyquorum authenticates
the canonical context as AAD, so the ciphertext is bound to it exactly as Vault
binds it to its AAD, and the native API decrypts the same ciphertext with that
context. Vault's ``context`` (key derivation) and ``convergent_encryption`` are
refused: keyquorum keys are never derived.

datakey runs through the pipeline with its native twin's permission (``datakey``,
with the context) and its own audit record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from keyquorum.errors import InvalidCiphertext, InvalidRequest
from keyquorum.keys.ciphertext import parse_ciphertext
from keyquorum.keys.models import Key
from keyquorum.service.context import RequestContext
from keyquorum.transit import fields
from keyquorum.transit.calls import Call
from keyquorum.transit.ciphertext import from_vault, to_vault
from keyquorum.transit.envelope import Answer, MethodNotAllowed

AAD_FIELD = "associated_data"
MAX_AAD_BYTES = 6 * 1024
DATAKEY_BITS = (128, 256, 512)
REFUSED = ("context", "nonce", "convergent_encryption", "derived", "partial_failure_response_code")


def context_of(item: dict[str, Any]) -> dict[str, str] | None:
    """keyquorum's encryption context for a Vault item's ``associated_data``."""
    aad = fields.b64(item, AAD_FIELD)
    if aad is None or not aad:
        return None
    if len(aad) > MAX_AAD_BYTES:
        raise InvalidRequest(f"associated_data is at most {MAX_AAD_BYTES} bytes")
    return {AAD_FIELD: fields.encode_b64(aad)}


def check_key_version(item: dict[str, Any], key: Key | None, use: str) -> None:
    """``key_version`` on a call that protects new data (``use``: encryption, signing,
    ...): the latest version (or 0, Vault's "latest") is accepted, any other refused
    with the reason. keyquorum's state machine lets only the primary version protect
    (NIST SP 800-57: past its originator-usage period a version only processes what it
    protected, decrypting and verifying), and that rule is not weakened for Vault
    clients. Without the key at hand the pipeline answers for it."""
    version = fields.integer(item, "key_version", None, low=0)
    if not version or key is None or version == key.primary_version:
        return
    if version > key.primary_version:  # Vault's words
        raise InvalidRequest(f"requested version for {use} is higher than the latest key "
                             "version")
    raise InvalidRequest(
        f"key_version {version} cannot be used for {use}: in keyquorum only the latest "
        f"version ({key.primary_version}) protects new data; older versions only decrypt "
        "and verify (NIST SP 800-57 originator-usage period). Leave key_version out")


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
        check_key_version(call.body, call.services.core.keys.get(name).key, "data keys")
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
