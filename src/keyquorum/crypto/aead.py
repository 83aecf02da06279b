"""Authenticated encryption with associated data: four 256-bit algorithms and AES-128-GCM.

``AeadKey`` builds the cipher object once; the service caches it and calls
``encrypt``/``decrypt`` on the hot path, so those methods do no lookups beyond
one bound call. Nonces are random from the OS CSPRNG unless a caller passes one
(known-answer tests do); with 12-byte random nonces the caller must bound the
number of messages per key (NIST SP 800-38D: 2^32 for AES-GCM), which the key
lifecycle does. Every failure to decrypt is the same ``InvalidCiphertext``.
AES-128-GCM (16-byte keys) is there for Vault's ``aes128-gcm96`` keys; the others'
keys are 32 bytes.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESGCMSIV, ChaCha20Poly1305
from nacl import bindings as _sodium
from nacl.exceptions import CryptoError as _SodiumError

from keyquorum.crypto.errors import InvalidCiphertext, UnsupportedAlgorithm
from keyquorum.crypto.random import random_bytes, random_nonce
from keyquorum.crypto.wipe import wipe

__all__ = ["AEAD_ALGORITHMS", "AeadKey", "generate_key", "key_size", "nonce_size", "open_into",
           "scrub_stack"]

KEY_SIZE = 32
_KEY_SIZES: dict[str, int] = {"aes-128-gcm": 16}
"""Key lengths other than ``KEY_SIZE``."""
TAG_SIZE = 16

_NONCE_SIZES: dict[str, int] = {
    "aes-256-gcm": 12,
    "chacha20-poly1305": 12,
    "xchacha20-poly1305": 24,
    "aes-256-gcm-siv": 12,
    "aes-128-gcm": 12,
}
AEAD_ALGORITHMS: tuple[str, ...] = tuple(_NONCE_SIZES)

_Seal = Callable[[bytes, bytes | bytearray, bytes], bytes]  # (nonce, data, aad) -> bytes


def nonce_size(alg: str) -> int:
    """Nonce length in bytes for ``alg``."""
    try:
        return _NONCE_SIZES[alg]
    except (KeyError, TypeError):
        raise UnsupportedAlgorithm("aead", alg, AEAD_ALGORITHMS) from None


def key_size(alg: str) -> int:
    """Key length in bytes for ``alg`` (16 for AES-128-GCM, 32 for the others)."""
    nonce_size(alg)
    return _KEY_SIZES.get(alg, KEY_SIZE)


def generate_key(alg: str) -> bytes:
    """A fresh key for ``alg`` (``key_size`` bytes) from the OS CSPRNG."""
    return random_bytes(key_size(alg))


class AeadKey:
    """One AEAD key, ready to use. The repr names the algorithm only."""

    __slots__ = ("_decrypt", "_encrypt", "_nonce_size", "alg")

    def __init__(self, alg: str, key: bytes | bytearray) -> None:
        self._nonce_size = nonce_size(alg)
        size = key_size(alg)
        if not isinstance(key, bytes | bytearray) or len(key) != size:
            raise ValueError(f"{alg} keys must be {size} bytes")
        self.alg = alg
        # A bytearray key is handed to pyca as it is, never copied into a bytes object
        # that would outlive a wipe: pyca keys its OpenSSL contexts at construction (so
        # wiping the buffer afterwards changes nothing here) and OpenSSL clears them
        # when this object is freed.
        self._encrypt, self._decrypt = _build(alg, key)

    def __repr__(self) -> str:
        return f"AeadKey(alg={self.alg!r})"

    def encrypt(
        self, plaintext: bytes | bytearray, aad: bytes, nonce: bytes | None = None
    ) -> tuple[bytes, bytes]:
        """Encrypt; returns ``(nonce, ciphertext_with_tag)``.

        Pass ``nonce`` only for known-answer tests: reusing a nonce under one key
        breaks confidentiality and (for GCM/Poly1305) authenticity.
        """
        if nonce is None:
            nonce = random_nonce(self._nonce_size)
        elif len(nonce) != self._nonce_size:
            raise ValueError(f"{self.alg} nonces must be {self._nonce_size} bytes")
        return nonce, self._encrypt(nonce, plaintext, aad)

    def decrypt(self, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        """Decrypt and authenticate, or raise ``InvalidCiphertext`` (never says why)."""
        # Length is checked here because AES-GCM would accept other nonce sizes.
        if len(nonce) != self._nonce_size or len(ciphertext) < TAG_SIZE:
            raise InvalidCiphertext()
        try:
            return self._decrypt(nonce, ciphertext, aad)
        except (InvalidTag, _SodiumError, ValueError, TypeError):
            raise InvalidCiphertext() from None


def open_into(key: bytes | bytearray, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytearray:
    """AES-256-GCM decryption into a new ``bytearray`` (``InvalidCiphertext`` on failure).

    For secrets unwrapped to be held and wiped (the root key, the barrier keyring): the
    plaintext is written by OpenSSL straight into the buffer returned and never exists
    as ``bytes``; on failure the buffer is wiped before the error is raised.
    """
    if len(key) != KEY_SIZE or len(nonce) != _NONCE_SIZES["aes-256-gcm"] \
            or len(ciphertext) < TAG_SIZE:
        raise InvalidCiphertext()
    out = bytearray(len(ciphertext) - TAG_SIZE)
    try:
        AESGCM(key).decrypt_into(nonce, ciphertext, aad, out)
    except (InvalidTag, ValueError, TypeError):
        wipe(out)
        raise InvalidCiphertext() from None
    finally:
        scrub_stack("aes-256-gcm")
    return out


_DECOYS: dict[str, tuple[_Seal, _Seal]] = {}


def scrub_stack(alg: str) -> None:
    """Overwrite the copy of a key that the last ``alg`` operation left on this thread's
    C stack, for keys that must not outlive their use (review F10).

    Each AES-GCM operation through pyca and OpenSSL leaves a copy of its key on the
    calling thread's C stack (measured by scanning a server's memory), where it stays
    until that depth of the stack is used again, even after the key's own buffer is
    wiped. An operation under a key that is no secret, made right after from the same
    depth, lands its copy exactly there. Call it right after the operation, from the
    same function.
    """
    decoy = _DECOYS.get(alg)
    if decoy is None:
        decoy = _DECOYS[alg] = _build(alg, bytes(key_size(alg)))
    encrypt, decrypt = decoy
    nonce = bytes(nonce_size(alg))  # nothing is encrypted: a fixed nonce is harmless
    decrypt(nonce, encrypt(nonce, b"", b""), b"")


def _build(alg: str, key: bytes | bytearray) -> tuple[_Seal, _Seal]:
    """Bind the algorithm's encrypt/decrypt once, so the hot path is one call."""
    if alg == "xchacha20-poly1305":
        # pyca has no XChaCha20; libsodium's IETF construction (24-byte nonce) does.
        # PyNaCl takes bytes only: this key is a copy that is not wiped.
        key = bytes(key)

        def seal(nonce: bytes, data: bytes | bytearray, aad: bytes) -> bytes:
            return _sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(bytes(data), aad, nonce,
                                                                      key)

        def unseal(nonce: bytes, data: bytes | bytearray, aad: bytes) -> bytes:
            return _sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(bytes(data), aad, nonce,
                                                                      key)

        return seal, unseal
    cipher: AESGCM | ChaCha20Poly1305 | AESGCMSIV
    if alg in ("aes-256-gcm", "aes-128-gcm"):  # the key's length picks AES-256 or AES-128
        cipher = AESGCM(key)
    elif alg == "chacha20-poly1305":
        cipher = ChaCha20Poly1305(key)
    else:
        cipher = AESGCMSIV(key)
    return cipher.encrypt, cipher.decrypt
