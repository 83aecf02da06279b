"""``Client``'s cryptographic operations, as a base class of it.

``_async_client_crypto.py`` is generated from this file by ``scripts/gen-async``, as
``_async_client.py`` is from ``_client.py``: edit here, then run it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from . import _crypto_calls as crypto
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
from ._protocol import BatchResult, Call, Context

T = TypeVar("T")


class CryptoMethods:
    """Encrypt, decrypt, sign, MAC, data keys and randomness: one server call each."""

    def _run(self, call: Call[T]) -> T:
        """Send ``call`` and read its answer (``Client`` does)."""
        raise NotImplementedError

    def encrypt(self, key: str, plaintext: bytes | str,
                context: Context | None = None) -> EncryptResult:
        """Encrypt under the key's primary version; ``context`` is bound as associated data."""
        return self._run(crypto.encrypt(key, plaintext, context))

    def encrypt_batch(self, key: str, items: Sequence[EncryptItem | bytes | str]
                      ) -> BatchResult[EncryptResult]:
        return self._run(crypto.encrypt_batch(key, items))

    def decrypt(self, ciphertext: str, context: Context | None = None, *,
                key: str | None = None,
                unsafe_allow_compromised: bool = False) -> DecryptResult:
        """Decrypt; the key is found from the ciphertext (``key`` pins it).

        ``unsafe_allow_compromised`` decrypts under a compromised version: DANGER,
        audited, for recovering data only.
        """
        return self._run(crypto.decrypt(
            ciphertext, context, key=key, unsafe_allow_compromised=unsafe_allow_compromised))

    def decrypt_batch(self, items: Sequence[DecryptItem | str], *, key: str | None = None,
                      unsafe_allow_compromised: bool = False) -> BatchResult[DecryptResult]:
        return self._run(crypto.decrypt_batch(
            items, key=key, unsafe_allow_compromised=unsafe_allow_compromised))

    def reencrypt(self, ciphertext: str, context: Context | None = None, *,
                  destination_key: str | None = None,
                  destination_context: Context | None = None,
                  unsafe_allow_compromised: bool = False) -> EncryptResult:
        """Re-encrypt under the primary version (or another key); plaintext never leaves."""
        return self._run(crypto.reencrypt(
            ciphertext, context, destination_key=destination_key,
            destination_context=destination_context,
            unsafe_allow_compromised=unsafe_allow_compromised))

    def reencrypt_batch(self, items: Sequence[ReencryptItem | str], *,
                        unsafe_allow_compromised: bool = False) -> BatchResult[EncryptResult]:
        return self._run(crypto.reencrypt_batch(
            items, unsafe_allow_compromised=unsafe_allow_compromised))

    def encrypt_oaep(self, key: str, plaintext: bytes | str, *,
                     hash: str | None = None) -> OaepCiphertext:
        """Encrypt to an RSA encryption key (RSAES-OAEP, ``hash`` sha256 or sha1); the
        same block a client makes locally with the key's public key."""
        return self._run(crypto.encrypt_oaep(key, plaintext, hash=hash))

    def decrypt_oaep(self, key: str, ciphertext: bytes, *, hash: str | None = None,
                     key_version: int | None = None) -> DecryptResult:
        """Decrypt an RSAES-OAEP block made with the key's public key (primary version
        unless ``key_version``)."""
        return self._run(crypto.decrypt_oaep(key, ciphertext, hash=hash,
                                             key_version=key_version))

    def datakey(self, key: str, *, bits: int | None = None, context: Context | None = None,
                plaintext: bool = True) -> DataKey:
        """A fresh data key wrapped under ``key`` (and in clear unless ``plaintext=False``)."""
        return self._run(crypto.datakey(key, bits=bits, context=context, plaintext=plaintext))

    def datakey_batch(self, key: str, items: Sequence[DataKeyItem]) -> BatchResult[DataKey]:
        return self._run(crypto.datakey_batch(key, items))

    def sign(self, key: str, message: bytes | str | None = None, *,
             digest: bytes | None = None, hash: str | None = None,
             scheme: str | None = None) -> Signature:
        """Sign a message, or a precomputed ``digest`` made with ``hash``; ``scheme``
        (RSA keys only) is ``pss`` (the default) or ``pkcs1v15``."""
        return self._run(crypto.sign(key, message, digest=digest, hash=hash, scheme=scheme))

    def sign_batch(self, key: str,
                   items: Sequence[SignItem | bytes | str]) -> BatchResult[Signature]:
        return self._run(crypto.sign_batch(key, items))

    def verify(self, key: str, signature: bytes, message: bytes | str | None = None, *,
               digest: bytes | None = None, hash: str | None = None,
               key_version: int | None = None, scheme: str | None = None) -> Verification:
        """Check a signature (by the primary version unless ``key_version``); truthy if valid.
        ``scheme`` must be the one the signature was made with (RSA keys only)."""
        return self._run(crypto.verify(key, signature, message, digest=digest, hash=hash,
                                       key_version=key_version, scheme=scheme))

    def verify_batch(self, key: str,
                     items: Sequence[VerifyItem]) -> BatchResult[Verification]:
        return self._run(crypto.verify_batch(key, items))

    def mac(self, key: str, message: bytes | str) -> Mac:
        return self._run(crypto.mac(key, message))

    def mac_batch(self, key: str, messages: Sequence[bytes | str]) -> BatchResult[Mac]:
        return self._run(crypto.mac_batch(key, messages))

    def verify_mac(self, key: str, message: bytes | str, mac: bytes, *,
                   key_version: int | None = None) -> Verification:
        return self._run(crypto.verify_mac(key, message, mac, key_version=key_version))

    def verify_mac_batch(self, key: str,
                         items: Sequence[VerifyMacItem]) -> BatchResult[Verification]:
        return self._run(crypto.verify_mac_batch(key, items))

    def decapsulate(self, key: str, encapsulation: bytes, *, key_version: int | None = None,
                    context: Context | None = None) -> SharedSecret:
        """Recover the shared secret of an encapsulation made with the key's public key."""
        return self._run(crypto.decapsulate(key, encapsulation, key_version=key_version,
                                            context=context))

    def decapsulate_batch(self, key: str, items: Sequence[DecapsulateItem | bytes]
                          ) -> BatchResult[SharedSecret]:
        return self._run(crypto.decapsulate_batch(key, items))

    def random(self, n: int) -> bytes:
        """``n`` (1-1024) random bytes from the server's CSPRNG."""
        return self._run(crypto.random(n))
