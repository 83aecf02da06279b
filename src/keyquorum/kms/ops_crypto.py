"""KMS cryptography: Encrypt, Decrypt, ReEncrypt, GenerateDataKey(+WithoutPlaintext),
GenerateRandom.

**Ciphertext blobs are keyquorum ciphertexts.** A ``CiphertextBlob`` is the ASCII
bytes of a native ``kq1:...`` ciphertext, so a blob from ``Encrypt`` is, decoded,
what ``POST /v1/decrypt`` takes, and a native ciphertext encoded is a blob
``Decrypt`` takes (the binary form, ``KQ...``, is accepted too). The
``EncryptionContext`` is keyquorum's encryption context, bound the same way.
Each call is the native verb (``CryptoOperations``) under the native twin's
permission, checked with the request's context (rules with ``context_keys``).

**RSA encryption keys** (KeyUsage ENCRYPT_DECRYPT with an RSA KeySpec) answer Encrypt
and Decrypt with EncryptionAlgorithm RSAES_OAEP_SHA_1 / RSAES_OAEP_SHA_256: the blob is
the raw OAEP block, as AWS's (clients encrypt to GetPublicKey's key and send it to
Decrypt with the KeyId), through the native ``encrypt-oaep`` / ``decrypt-oaep`` verbs.
As in AWS, such keys take no EncryptionContext and make no data keys.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, TypeVar

from keyquorum.crypto.errors import InvalidCiphertext as CryptoInvalid
from keyquorum.errors import KeyStateError
from keyquorum.keys.ciphertext import PREFIX, parse_ciphertext
from keyquorum.keys.models import Key
from keyquorum.keys.states import KeyState
from keyquorum.kms.call import MAX_PLAINTEXT, KmsCall, require_usage
from keyquorum.kms.errors import (
    IncorrectKey,
    KmsInvalidCiphertext,
    KmsRequestError,
    KmsStateError,
    unsupported,
    validation,
)
from keyquorum.kms.registry import operation
from keyquorum.service.context import RequestContext

T = TypeVar("T")
SYMMETRIC = "SYMMETRIC_DEFAULT"
MAX_CIPHERTEXT = 6144


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def blob_of(ciphertext: str) -> str:
    """A native ciphertext as a KMS CiphertextBlob (base64 of its ASCII bytes)."""
    return b64(ciphertext.encode("ascii"))


def native_ciphertext(blob: bytes) -> tuple[str, str]:
    """(the native ``kq1:`` text, the id of the key it names) of a blob, or
    InvalidCiphertextException."""
    if blob.startswith(PREFIX.encode()):
        try:
            text = blob.decode("ascii")
        except UnicodeDecodeError:
            raise KmsInvalidCiphertext("") from None
    else:
        text = PREFIX + base64.urlsafe_b64encode(blob).rstrip(b"=").decode("ascii")
    try:
        header, _header_bytes, _body = parse_ciphertext(text)
    except (CryptoInvalid, ValueError):
        raise KmsInvalidCiphertext("") from None
    return text, str(header.key_id)


OAEP = {"RSAES_OAEP_SHA_1": "sha1", "RSAES_OAEP_SHA_256": "sha256"}
"""AWS's RSA EncryptionAlgorithms → the OAEP hash of ``crypto.rsa_oaep``."""


def _algorithm(call: KmsCall, field: str = "EncryptionAlgorithm", *,
               rsa: bool = False) -> str:
    chosen = call.choice(field, (SYMMETRIC, *OAEP, "SM2PKE"), SYMMETRIC)
    assert chosen is not None
    if chosen == "SM2PKE" or (chosen in OAEP and not rsa):
        raise unsupported(f"{field} {chosen} is not supported here: {field} takes "
                          "SYMMETRIC_DEFAULT (Encrypt and Decrypt also take RSAES_OAEP_SHA_1 "
                          "and RSAES_OAEP_SHA_256 with RSA keys)")
    return chosen


def matches_algorithm(key: Key, algorithm: str, action: str) -> None:
    """InvalidKeyUsageException when the algorithm is not the key's kind (as AWS)."""
    if (algorithm in OAEP) != key.spec.startswith("rsa-"):
        raise KmsRequestError(f"{action} with EncryptionAlgorithm {algorithm} is not valid "
                              f"for this key; it supports "
                              f"{', '.join(encryption_algorithms(key.spec))}",
                              "InvalidKeyUsageException")


def _pending_import(key: Key) -> bool:
    """A key whose imported material was taken out (deleted or expired, ``kms.withdrawn``):
    natively disabled with its version's material erased; AWS's ``PendingImport``."""
    return key.origin == "imported" and key.state is KeyState.DISABLED and any(
        v.destroyed_at is not None for v in key.versions)


def state_error(key: Key, exc: KeyStateError) -> KeyStateError:
    """A key state refusal under AWS's name: DisabledException for a disabled key,
    KMSInvalidStateException for one pending import (as AWS: its material was deleted
    or expired) and every other state."""
    if isinstance(exc, KmsStateError):
        return exc
    name = "DisabledException" if key.state is KeyState.DISABLED \
        and not _pending_import(key) else "KMSInvalidStateException"
    message = f"{key.id} is {key.state.value}: {exc.message}"
    mapped = KmsStateError(message, name)
    mapped.audit_subject = exc.audit_subject
    return mapped


def guarded(key: Key, work: Callable[[], T]) -> T:
    try:
        return work()
    except KeyStateError as exc:
        raise state_error(key, exc) from exc


async def _encrypting_key(call: KmsCall, action: str, field: str = "KeyId") -> Key:
    target = await call.target(field, cached=True)
    key = target.require(str(call.body.get(field)))
    require_usage(key, "encrypt", action)
    return key


@operation("Encrypt", "encrypt")
async def encrypt(call: KmsCall) -> dict[str, Any]:
    plaintext = call.blob("Plaintext", limit=MAX_PLAINTEXT)
    assert plaintext is not None
    context = call.context()
    algorithm = _algorithm(call, rsa=True)
    key = await _encrypting_key(call, "Encrypt")
    matches_algorithm(key, algorithm, "Encrypt")
    runner, ops = call.services.runner, call.services.operations
    if algorithm in OAEP:
        return await _encrypt_oaep(call, key, plaintext, algorithm)

    def work(ctx: RequestContext) -> Any:
        runner.authorize(ctx, "encrypt", key.name, context=context)
        done = guarded(key, lambda: ops.encrypt(ctx, key.name, plaintext, context))
        return _audited({"CiphertextBlob": blob_of(done.ciphertext),
                         "KeyId": call.names.key_arn(key.id),
                         "EncryptionAlgorithm": SYMMETRIC}, done.key, done.version)

    return await call.run("encrypt", key.name, work, permission=None)  # type: ignore[no-any-return]


async def _encrypt_oaep(call: KmsCall, key: Key, plaintext: bytes,
                        algorithm: str) -> dict[str, Any]:
    if call.body.get("EncryptionContext"):
        raise validation("EncryptionContext is not supported with asymmetric keys")
    ops = call.services.operations

    def work(ctx: RequestContext) -> Any:
        done = guarded(key, lambda: ops.encrypt_oaep(ctx, key.name, plaintext,
                                                     OAEP[algorithm]))
        return _audited({"CiphertextBlob": done.ciphertext,  # already base64
                         "KeyId": call.names.key_arn(key.id),
                         "EncryptionAlgorithm": algorithm}, done.key, done.version)

    return await call.run("encrypt", key.name, work,  # type: ignore[no-any-return]
                          permission="encrypt")


async def _decrypt_oaep(call: KmsCall, blob: bytes, algorithm: str) -> dict[str, Any]:
    if call.body.get("KeyId") is None:
        raise validation("KeyId is required to decrypt with an asymmetric key")
    if call.body.get("EncryptionContext"):
        raise validation("EncryptionContext is not supported with asymmetric keys")
    key = await _encrypting_key(call, "Decrypt")
    matches_algorithm(key, algorithm, "Decrypt")
    ops = call.services.operations

    def work(ctx: RequestContext) -> Any:
        done = guarded(key, lambda: ops.decrypt_oaep(ctx, key.name, blob, OAEP[algorithm],
                                                     version=None))
        return _audited({"KeyId": call.names.key_arn(key.id),
                         "Plaintext": b64(done.plaintext),
                         "EncryptionAlgorithm": algorithm}, done.key, done.version)

    return await call.run("decrypt", key.name, work,  # type: ignore[no-any-return]
                          permission="decrypt")


def encryption_algorithms(spec: str) -> list[str]:
    """DescribeKey's and GetPublicKey's EncryptionAlgorithms for an encryption key."""
    return list(OAEP) if spec.startswith("rsa-") else [SYMMETRIC]


def _audited(answer: dict[str, Any], key: str | None, version: int | None) -> Any:
    from keyquorum.api.runner import Audited

    return Audited(answer, key, version)


async def _expected(call: KmsCall, field: str, key_id: str) -> None:
    """IncorrectKeyException when ``field`` names a key other than the ciphertext's."""
    if call.body.get(field) is None:
        return
    target = await call.target(field, cached=True)
    named = target.require(str(call.body.get(field)))
    if named.id != key_id:
        raise IncorrectKey("The key ID in the request does not identify the key that was "
                           "used to encrypt the ciphertext.")


@operation("Decrypt", "decrypt")
async def decrypt(call: KmsCall) -> dict[str, Any]:
    if call.body.get("Recipient"):
        raise unsupported("Recipient (Nitro Enclaves attestation) is not supported")
    blob = call.blob("CiphertextBlob", limit=MAX_CIPHERTEXT)
    assert blob is not None
    algorithm = _algorithm(call, rsa=True)
    if algorithm in OAEP:
        return await _decrypt_oaep(call, blob, algorithm)
    context = call.context()
    text, key_id = native_ciphertext(blob)
    await _expected(call, "KeyId", key_id)
    ops = call.services.operations

    def work(ctx: RequestContext) -> Any:
        try:
            done = ops.decrypt(ctx, text, context)
        except KeyStateError as exc:
            raise _state_by_id(call, key_id, exc) from exc
        return _audited({"KeyId": call.names.key_arn(key_id), "Plaintext": b64(done.plaintext),
                         "EncryptionAlgorithm": SYMMETRIC}, done.key, done.version)

    return await call.run("decrypt", None, work, permission=None)  # type: ignore[no-any-return]


def _state_by_id(call: KmsCall, key_id: str, exc: KeyStateError) -> KeyStateError:
    loaded = call.services.core.keys.cached_by_id(key_id)
    return state_error(loaded.key, exc) if loaded is not None else exc


@operation("ReEncrypt", "reencrypt")
async def reencrypt(call: KmsCall) -> dict[str, Any]:
    blob = call.blob("CiphertextBlob", limit=MAX_CIPHERTEXT)
    assert blob is not None
    source_context = call.context("SourceEncryptionContext")
    destination_context = call.context("DestinationEncryptionContext")
    _algorithm(call, "SourceEncryptionAlgorithm")
    _algorithm(call, "DestinationEncryptionAlgorithm")
    text, key_id = native_ciphertext(blob)
    await _expected(call, "SourceKeyId", key_id)
    destination = await _encrypting_key(call, "ReEncrypt", "DestinationKeyId")
    matches_algorithm(destination, SYMMETRIC, "ReEncrypt")
    ops = call.services.operations

    def work(ctx: RequestContext) -> Any:
        try:
            done = ops.reencrypt(ctx, text, source_context, destination_key=destination.name,
                                 destination_context=destination_context)
        except KeyStateError as exc:
            raise _state_by_id(call, key_id, exc) from exc
        return _audited({"CiphertextBlob": blob_of(done.ciphertext),
                         "SourceKeyId": call.names.key_arn(key_id),
                         "KeyId": call.names.key_arn(destination.id),
                         "SourceEncryptionAlgorithm": SYMMETRIC,
                         "DestinationEncryptionAlgorithm": SYMMETRIC}, done.key, done.version)

    return await call.run("reencrypt", None, work, permission=None)  # type: ignore[no-any-return]


def _data_key_bytes(call: KmsCall) -> int:
    spec = call.choice("KeySpec", ("AES_256", "AES_128"))
    count = call.integer("NumberOfBytes", 1, 1024)
    if (spec is None) == (count is None):
        raise validation("give exactly one of KeySpec and NumberOfBytes")
    return count if count is not None else (32 if spec == "AES_256" else 16)


async def _data_key(call: KmsCall, action: str, *, with_plaintext: bool) -> dict[str, Any]:
    if call.body.get("Recipient"):
        raise unsupported("Recipient (Nitro Enclaves attestation) is not supported")
    size = _data_key_bytes(call)
    context = call.context()
    key = await _encrypting_key(call, action)
    matches_algorithm(key, SYMMETRIC, action)
    runner, ops = call.services.runner, call.services.operations

    def work(ctx: RequestContext) -> Any:
        runner.authorize(ctx, "datakey", key.name, context=context)
        done = guarded(key, lambda: ops.datakey(ctx, key.name, size * 8, context,
                                                with_plaintext=with_plaintext))
        answer = {"CiphertextBlob": blob_of(done.ciphertext),
                  "KeyId": call.names.key_arn(key.id)}
        if with_plaintext and done.plaintext is not None:
            answer["Plaintext"] = b64(done.plaintext)
        return _audited(answer, done.key, done.version)

    return await call.run("datakey", key.name, work, permission=None)  # type: ignore[no-any-return]


@operation("GenerateDataKey", "datakey")
async def generate_data_key(call: KmsCall) -> dict[str, Any]:
    return await _data_key(call, "GenerateDataKey", with_plaintext=True)


@operation("GenerateDataKeyWithoutPlaintext", "datakey")
async def generate_data_key_without_plaintext(call: KmsCall) -> dict[str, Any]:
    return await _data_key(call, "GenerateDataKeyWithoutPlaintext", with_plaintext=False)


@operation("GenerateRandom", "random")
async def generate_random(call: KmsCall) -> dict[str, Any]:
    if call.body.get("CustomKeyStoreId") or call.body.get("Recipient"):
        raise unsupported("GenerateRandom takes only NumberOfBytes in keyquorum")
    count = call.integer("NumberOfBytes", 1, 1024, 32)
    assert count is not None
    ops = call.services.operations

    def work(_ctx: RequestContext) -> dict[str, Any]:
        return {"Plaintext": b64(ops.random(count).data)}

    return await call.run("random", None, work, permission="random")  # type: ignore[no-any-return]
