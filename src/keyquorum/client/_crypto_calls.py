"""The cryptographic operations as ``Call``s (no I/O): single items and batches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._crypto_models import (
    DataKey,
    DataKeyItem,
    DecapsulateItem,
    DecryptItem,
    DecryptResult,
    EncryptItem,
    EncryptResult,
    Mac,
    OaepCiphertext,
    ReencryptItem,
    SharedSecret,
    Signature,
    SignItem,
    Verification,
    VerifyItem,
    VerifyMacItem,
)
from ._models import b64decode, b64encode
from ._protocol import BatchResult, Call, Context, _batch, _bytes, _context, _one, _put, key_path

# --- cryptographic operations: one item's body --------------------------------


def encrypt_item(item: EncryptItem | bytes | str) -> dict[str, Any]:
    if not isinstance(item, EncryptItem):
        item = EncryptItem(_bytes(item))
    return _put({"plaintext": b64encode(_bytes(item.plaintext))}, context=_context(item.context))


def decrypt_item(item: DecryptItem | str, unsafe_allow_compromised: bool = False) -> dict[str, Any]:
    if not isinstance(item, DecryptItem):
        item = DecryptItem(item)
    body = _put({"ciphertext": item.ciphertext.strip()}, context=_context(item.context))
    if unsafe_allow_compromised:
        body["unsafe_allow_compromised"] = True
    return body


def reencrypt_item(item: ReencryptItem | str,
                   unsafe_allow_compromised: bool = False) -> dict[str, Any]:
    if not isinstance(item, ReencryptItem):
        item = ReencryptItem(item)
    body = _put({"ciphertext": item.ciphertext.strip()}, context=_context(item.context),
                destination_key=item.destination_key,
                destination_context=_context(item.destination_context))
    if unsafe_allow_compromised:
        body["unsafe_allow_compromised"] = True
    return body


def datakey_item(item: DataKeyItem) -> dict[str, Any]:
    return _put({"plaintext": item.plaintext}, bits=item.bits, context=_context(item.context))


def sign_item(item: SignItem | bytes | str) -> dict[str, Any]:
    if not isinstance(item, SignItem):
        item = SignItem(message=_bytes(item))
    if (item.message is None) == (item.digest is None):
        raise ValueError("sign takes exactly one of message or digest")
    if item.digest is not None and not item.hash:
        raise ValueError("a digest needs its hash (sha256, sha384 or sha512)")
    return _put({}, message=None if item.message is None else b64encode(_bytes(item.message)),
                digest=None if item.digest is None else b64encode(item.digest), hash=item.hash,
                scheme=item.scheme)


def verify_item(item: VerifyItem) -> dict[str, Any]:
    if (item.message is None) == (item.digest is None):
        raise ValueError("verify takes exactly one of message or digest")
    return _put({"signature": b64encode(item.signature)},
                message=None if item.message is None else b64encode(_bytes(item.message)),
                digest=None if item.digest is None else b64encode(item.digest),
                hash=item.hash, key_version=item.key_version, scheme=item.scheme)


def mac_item(message: bytes | str) -> dict[str, Any]:
    return {"message": b64encode(_bytes(message))}


def verify_mac_item(item: VerifyMacItem) -> dict[str, Any]:
    return _put({"message": b64encode(_bytes(item.message)), "mac": b64encode(item.mac)},
                key_version=item.key_version)


def decapsulate_item(item: DecapsulateItem | bytes) -> dict[str, Any]:
    if not isinstance(item, DecapsulateItem):
        item = DecapsulateItem(item)
    return _put({"encapsulation": b64encode(item.encapsulation)},
                key_version=item.key_version, context=_context(item.context))


# --- cryptographic operations: calls -----------------------------------------


def encrypt(key: str, plaintext: bytes | str,
            context: Context | None = None) -> Call[EncryptResult]:
    return Call("POST", key_path(key, "/encrypt"), _one(EncryptResult.from_json),
                json=encrypt_item(EncryptItem(_bytes(plaintext), context)))


def encrypt_batch(key: str, items: Sequence[EncryptItem | bytes | str]
                  ) -> Call[BatchResult[EncryptResult]]:
    return Call("POST", key_path(key, "/encrypt"), _batch(EncryptResult.from_json),
                json={"batch": [encrypt_item(i) for i in items]})


def _decrypt_path(key: str | None) -> str:
    return "/v1/decrypt" if key is None else key_path(key, "/decrypt")


def decrypt(ciphertext: str, context: Context | None = None, *, key: str | None = None,
            unsafe_allow_compromised: bool = False) -> Call[DecryptResult]:
    return Call("POST", _decrypt_path(key), _one(DecryptResult.from_json),
                json=decrypt_item(DecryptItem(ciphertext, context), unsafe_allow_compromised))


def decrypt_batch(items: Sequence[DecryptItem | str], *, key: str | None = None,
                  unsafe_allow_compromised: bool = False) -> Call[BatchResult[DecryptResult]]:
    return Call("POST", _decrypt_path(key), _batch(DecryptResult.from_json),
                json={"batch": [decrypt_item(i, unsafe_allow_compromised) for i in items]})


def reencrypt(ciphertext: str, context: Context | None = None, *,
              destination_key: str | None = None, destination_context: Context | None = None,
              unsafe_allow_compromised: bool = False) -> Call[EncryptResult]:
    item = ReencryptItem(ciphertext, context, destination_key, destination_context)
    return Call("POST", "/v1/reencrypt", _one(EncryptResult.from_json),
                json=reencrypt_item(item, unsafe_allow_compromised))


def reencrypt_batch(items: Sequence[ReencryptItem | str], *,
                    unsafe_allow_compromised: bool = False) -> Call[BatchResult[EncryptResult]]:
    return Call("POST", "/v1/reencrypt", _batch(EncryptResult.from_json),
                json={"batch": [reencrypt_item(i, unsafe_allow_compromised) for i in items]})


def datakey(key: str, *, bits: int | None = None, context: Context | None = None,
            plaintext: bool = True) -> Call[DataKey]:
    return Call("POST", key_path(key, "/datakey"), _one(DataKey.from_json),
                json=datakey_item(DataKeyItem(bits, context, plaintext)))


def datakey_batch(key: str, items: Sequence[DataKeyItem]) -> Call[BatchResult[DataKey]]:
    return Call("POST", key_path(key, "/datakey"), _batch(DataKey.from_json),
                json={"batch": [datakey_item(i) for i in items]})


def encrypt_oaep(key: str, plaintext: bytes | str, *,
                 hash: str | None = None) -> Call[OaepCiphertext]:
    body = _put({"plaintext": b64encode(_bytes(plaintext))}, hash=hash)
    return Call("POST", key_path(key, "/encrypt-oaep"), _one(OaepCiphertext.from_json),
                json=body)


def decrypt_oaep(key: str, ciphertext: bytes, *, hash: str | None = None,
                 key_version: int | None = None) -> Call[DecryptResult]:
    body = _put({"ciphertext": b64encode(ciphertext)}, hash=hash, key_version=key_version)
    return Call("POST", key_path(key, "/decrypt-oaep"), _one(DecryptResult.from_json),
                json=body)


def sign(key: str, message: bytes | str | None = None, *, digest: bytes | None = None,
         hash: str | None = None, scheme: str | None = None) -> Call[Signature]:
    item = SignItem(None if message is None else _bytes(message), digest, hash, scheme)
    return Call("POST", key_path(key, "/sign"), _one(Signature.from_json), json=sign_item(item))


def sign_batch(key: str, items: Sequence[SignItem | bytes | str]) -> Call[BatchResult[Signature]]:
    return Call("POST", key_path(key, "/sign"), _batch(Signature.from_json),
                json={"batch": [sign_item(i) for i in items]})


def verify(key: str, signature: bytes, message: bytes | str | None = None, *,
           digest: bytes | None = None, hash: str | None = None,
           key_version: int | None = None, scheme: str | None = None) -> Call[Verification]:
    item = VerifyItem(signature, None if message is None else _bytes(message), digest, hash,
                      key_version, scheme)
    return Call("POST", key_path(key, "/verify"), _one(Verification.from_json),
                json=verify_item(item))


def verify_batch(key: str, items: Sequence[VerifyItem]) -> Call[BatchResult[Verification]]:
    return Call("POST", key_path(key, "/verify"), _batch(Verification.from_json),
                json={"batch": [verify_item(i) for i in items]})


def mac(key: str, message: bytes | str) -> Call[Mac]:
    return Call("POST", key_path(key, "/mac"), _one(Mac.from_json), json=mac_item(message))


def mac_batch(key: str, messages: Sequence[bytes | str]) -> Call[BatchResult[Mac]]:
    return Call("POST", key_path(key, "/mac"), _batch(Mac.from_json),
                json={"batch": [mac_item(m) for m in messages]})


def verify_mac(key: str, message: bytes | str, mac: bytes, *,
               key_version: int | None = None) -> Call[Verification]:
    item = VerifyMacItem(_bytes(message), mac, key_version)
    return Call("POST", key_path(key, "/verify-mac"), _one(Verification.from_json),
                json=verify_mac_item(item))


def verify_mac_batch(key: str, items: Sequence[VerifyMacItem]
                     ) -> Call[BatchResult[Verification]]:
    return Call("POST", key_path(key, "/verify-mac"), _batch(Verification.from_json),
                json={"batch": [verify_mac_item(i) for i in items]})


def decapsulate(key: str, encapsulation: bytes, *, key_version: int | None = None,
                context: Context | None = None) -> Call[SharedSecret]:
    return Call("POST", key_path(key, "/decapsulate"), _one(SharedSecret.from_json),
                json=decapsulate_item(DecapsulateItem(encapsulation, key_version, context)))


def decapsulate_batch(key: str, items: Sequence[DecapsulateItem | bytes]
                      ) -> Call[BatchResult[SharedSecret]]:
    return Call("POST", key_path(key, "/decapsulate"), _batch(SharedSecret.from_json),
                json={"batch": [decapsulate_item(i) for i in items]})


def random(n: int) -> Call[bytes]:
    return Call("POST", "/v1/random", lambda body, _rid: b64decode(str(body["random"])),
                json={"bytes": n})


