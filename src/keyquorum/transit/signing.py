"""``transit/sign``, ``verify`` (signatures and HMACs) and ``hmac``, single and batch.

Native twins: sign → ``sign``, verify → ``verify``, hmac and HMAC verify →
``mac`` (as ``POST /v1/keys/{name}/mac`` and ``verify-mac``). Signatures and
tags are ``vault:v<N>:<base64>``; ``marshaling_algorithm=jws`` gives ECDSA's raw
``r || s`` in base64url, as Vault does. keyquorum signs RSA with PSS (salt as
long as the digest; the default) or PKCS#1 v1.5 (``signature_algorithm=pkcs1v15``),
signs with the latest version only (``key_version`` naming another is refused with
the reason: only the primary version protects), and computes HMACs with ``hmac``
keys only: other requests are refused, never approximated.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from keyquorum.api.crypto_routes import KEY_ROUTES
from keyquorum.crypto.ecdsa_format import CURVE_BYTES, der_to_raw, raw_to_der
from keyquorum.errors import InvalidRequest
from keyquorum.keys.models import Key
from keyquorum.transit import fields
from keyquorum.transit.calls import Call
from keyquorum.transit.ciphertext import split_vault
from keyquorum.transit.crypto import check_key_version
from keyquorum.transit.envelope import Answer
from keyquorum.transit.native_crypto import key_at_hand, run_native
from keyquorum.transit.types import hmac_bits

HASHES = {"sha2-256": "sha256", "sha2-384": "sha384", "sha2-512": "sha512"}
_INTERNAL_HASH = ("ed25519", "ml-dsa-44", "ml-dsa-65", "ml-dsa-87")
UNSUPPORTED = ("context", "salt_length_custom", "cmac")


def _hash_name(item: dict[str, Any], path_hash: str | None, spec: str) -> str | None:
    wanted = fields.text(item, "hash_algorithm") or fields.text(item, "algorithm") \
        or path_hash or "sha2-256"
    if spec in _INTERNAL_HASH:
        return None  # Ed25519 and ML-DSA hash internally; Vault ignores the field too
    if wanted not in HASHES:
        raise InvalidRequest(f"hash_algorithm {wanted} is not supported; keyquorum signs "
                             f"with {', '.join(HASHES)}")
    return HASHES[wanted]


def _scheme(item: dict[str, Any], spec: str) -> str | None:
    """The RSA padding (None: PSS, the default); Vault's field is ignored for other keys
    when it names the default, as Vault ignores it, and refused when it asks for more."""
    signature_algorithm = fields.text(item, "signature_algorithm") or "pss"
    if signature_algorithm not in ("pss", "pkcs1v15"):
        raise InvalidRequest("signature_algorithm must be pss or pkcs1v15")
    if not spec.startswith("rsa-"):
        if signature_algorithm != "pss":
            raise InvalidRequest("signature_algorithm pkcs1v15 is for RSA keys")
        return None
    return None if signature_algorithm == "pss" else "pkcs1v15"


def _check_options(item: dict[str, Any], spec: str) -> None:
    _scheme(item, spec)
    salt = fields.text(item, "salt_length") or "auto"
    if salt not in ("auto", "hash"):
        raise InvalidRequest("salt_length must be auto or hash: keyquorum's PSS salt is as "
                             "long as the digest")
    marshaling = fields.text(item, "marshaling_algorithm") or "asn1"
    if marshaling not in ("asn1", "jws"):
        raise InvalidRequest("marshaling_algorithm must be asn1 or jws")
    if marshaling == "jws" and spec not in CURVE_BYTES:
        raise InvalidRequest("marshaling_algorithm jws is for ECDSA keys")
    if fields.boolean(item, "prehashed") and spec in _INTERNAL_HASH:
        raise InvalidRequest(f"{spec} keys sign messages, not prehashed input")


def _message(item: dict[str, Any]) -> tuple[bytes | None, bytes | None]:
    data = fields.b64(item, "input", required=True) or b""
    return (None, data) if fields.boolean(item, "prehashed") else (data, None)


def _jws(item: dict[str, Any]) -> bool:
    return (fields.text(item, "marshaling_algorithm") or "asn1") == "jws"


def _native_input(item: dict[str, Any]) -> dict[str, Any]:
    """Vault's ``input`` (``prehashed``: a digest) as the native item's base64 field."""
    message, digest = _message(item)
    if digest is not None:
        return {"digest": fields.encode_b64(digest)}
    return {"message": fields.encode_b64(message or b"")}


def _sign_translate(key: Key | None, path_hash: str | None) -> Any:
    def translate(item: dict[str, Any]) -> dict[str, Any]:
        fields.refuse_unsupported(item, UNSUPPORTED)
        native = _native_input(item)
        if key is None:  # the pipeline answers for the key (not found, sealed)
            return {**native, "hash": "sha256"} if "digest" in native else native
        _check_options(item, key.spec)
        check_key_version(item, key, "signing")
        return _with_hash_and_scheme(native, item, path_hash, key.spec)

    return translate


def _with_hash_and_scheme(native: dict[str, Any], item: dict[str, Any],
                          path_hash: str | None, spec: str) -> dict[str, Any]:
    """``native`` with the hash and RSA scheme the Vault item asks for, when it asks."""
    hash_name = _hash_name(item, path_hash, spec)
    if hash_name is not None:
        native["hash"] = hash_name
    scheme = _scheme(item, spec)
    if scheme is not None:
        native["scheme"] = scheme
    return native


def _signed(spec: str | None) -> Any:
    def shape(answer: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
        signature = base64.b64decode(answer["signature"])
        if _jws(item) and spec is not None:
            encoded = base64.urlsafe_b64encode(der_to_raw(spec, signature)).decode()
            encoded = encoded.rstrip("=")
        else:
            encoded = fields.encode_b64(signature)
        return {"signature": f"vault:v{answer['key_version']}:{encoded}",
                "key_version": answer["key_version"]}

    return shape


async def sign(call: Call) -> Answer:
    name = call.key_name()
    path_hash = call.segments[2] if len(call.segments) > 2 else None
    key = await key_at_hand(call, name)
    spec = key.spec if key is not None else None
    return await run_native(call, KEY_ROUTES["sign"], name, _sign_translate(key, path_hash),
                            _signed(spec))


def _signature(item: dict[str, Any], spec: str) -> tuple[int, bytes]:
    text = item.get("signature")
    if _jws(item) and isinstance(text, str) and text.startswith("vault:v"):
        number, _, rest = text[len("vault:v"):].partition(":")
        try:
            raw = base64.urlsafe_b64decode(rest + "=" * (-len(rest) % 4))
        except (binascii.Error, ValueError):
            raise InvalidRequest("signature is not valid base64url") from None
        if not number.isdigit():
            raise InvalidRequest("signature has no version prefix")
        return int(number), raw_to_der(spec, raw)
    try:
        return split_vault(text)
    except Exception:
        raise InvalidRequest("signature must be vault:v<N>:<base64>") from None


def _verify_translate(key: Key | None, path_hash: str | None) -> Any:
    def translate(item: dict[str, Any]) -> dict[str, Any]:
        fields.refuse_unsupported(item, UNSUPPORTED)
        if item.get("hmac") is not None:
            raise InvalidRequest("keyquorum computes HMACs with hmac keys only (type hmac)")
        native = _native_input(item)
        if key is None:
            return {**native, "signature": "AA=="}  # the pipeline answers for the key
        _check_options(item, key.spec)
        version, signature = _signature(item, key.spec)
        native.update(signature=fields.encode_b64(signature), key_version=version)
        return _with_hash_and_scheme(native, item, path_hash, key.spec)

    return translate


def _verify_hmac_translate(key: Key | None) -> Any:
    def translate(item: dict[str, Any]) -> dict[str, Any]:
        if item.get("hmac") is None:
            raise InvalidRequest("this is an hmac key: verify takes hmac, not signature")
        if key is not None:
            _check_hmac_algorithm(key, item, None)
        try:
            version, tag = split_vault(item.get("hmac"))
        except Exception:
            raise InvalidRequest("hmac must be vault:v<N>:<base64>") from None
        message = fields.b64(item, "input", required=True) or b""
        return {"message": fields.encode_b64(message), "mac": fields.encode_b64(tag),
                "key_version": version}

    return translate


def _valid(answer: dict[str, Any], _item: dict[str, Any]) -> dict[str, Any]:
    return {"valid": answer["valid"]}


async def verify(call: Call) -> Answer:
    """Signatures on the native ``verify`` route; HMACs (an hmac key, or a request whose
    first item carries ``hmac`` when the key is not at hand) on ``verify-mac``."""
    name = call.key_name()
    path_hash = call.segments[2] if len(call.segments) > 2 else None
    key = await key_at_hand(call, name)
    items = call.body.get("batch_input")
    first = items[0] if isinstance(items, list) and items and isinstance(items[0], dict) \
        else call.body
    macs = hmac_bits(key.spec) is not None if key is not None else first.get("hmac") is not None
    if macs:
        return await run_native(call, KEY_ROUTES["verify-mac"], name,
                                _verify_hmac_translate(key), _valid,
                                failed_item={"valid": False})
    return await run_native(call, KEY_ROUTES["verify"], name,
                            _verify_translate(key, path_hash), _valid,
                            failed_item={"valid": False})


def _check_hmac_algorithm(key: Key, item: dict[str, Any], path_algorithm: str | None) -> None:
    bits = hmac_bits(key.spec)
    if bits is None:
        raise InvalidRequest("keyquorum computes HMACs with hmac keys only (type hmac)")
    wanted = fields.text(item, "algorithm") or fields.text(item, "hash_algorithm") \
        or path_algorithm or "sha2-256"
    if wanted != f"sha2-{bits}":
        raise InvalidRequest(f"this key computes HMAC-SHA-{bits} only (algorithm sha2-{bits})")


def _hmac_translate(key: Key | None, path_algorithm: str | None) -> Any:
    def translate(item: dict[str, Any]) -> dict[str, Any]:
        message = fields.b64(item, "input", required=True) or b""
        if key is not None:
            _check_hmac_algorithm(key, item, path_algorithm)
            check_key_version(item, key, "HMAC")
        return {"message": fields.encode_b64(message)}

    return translate


def _tagged(answer: dict[str, Any], _item: dict[str, Any]) -> dict[str, Any]:
    return {"hmac": f"vault:v{answer['key_version']}:{answer['mac']}"}


async def hmac(call: Call) -> Answer:
    name = call.key_name()
    path_algorithm = call.segments[2] if len(call.segments) > 2 else None
    key = await key_at_hand(call, name)
    return await run_native(call, KEY_ROUTES["mac"], name, _hmac_translate(key, path_algorithm),
                            _tagged)
