"""RSAES-OAEP (RFC 8017 §7.1) for RSA keys of purpose ``encrypt``.

An asymmetric encryption key exists so that anyone holding its public key can
encrypt without calling keyquorum (AWS KMS clients do exactly that with
GetPublicKey); only the server, holding the private key, decrypts. The
ciphertext is therefore the plain OAEP block a standard library produces, not a
``kq1:`` envelope: a client with only the public key could not build the header.

MGF1 uses the same hash as OAEP, as AWS KMS and most libraries do. SHA-256 is
the default; SHA-1 is offered for AWS's RSAES_OAEP_SHA_1 (OAEP's security does
not rest on collision resistance, so SHA-1 is still sound here). The label is
empty: clients cannot set one through AWS or Vault, so an encryption context
cannot be bound (docs/FORMAT.md says so).

Every decryption failure is one ``InvalidCiphertext`` with the vague message:
saying which check failed would be a padding oracle (Manger's attack). pyca
(OpenSSL) decodes OAEP in constant time.
"""

from __future__ import annotations

from cryptography.exceptions import UnsupportedAlgorithm as _PycaUnsupported
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from keyquorum.crypto.errors import InvalidCiphertext, InvalidSignatureInput, UnsupportedAlgorithm

__all__ = ["OAEP_ALGORITHMS", "OAEP_HASHES", "OaepKey", "encrypt_with_public_pem",
           "max_plaintext"]

_BITS = {"rsa-2048": 2048, "rsa-3072": 3072, "rsa-4096": 4096}
OAEP_ALGORITHMS: tuple[str, ...] = tuple(_BITS)
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"sha256": hashes.SHA256, "sha1": hashes.SHA1}
OAEP_HASHES: tuple[str, ...] = tuple(_HASHES)


def _bits(alg: str) -> int:
    try:
        return _BITS[alg]
    except (KeyError, TypeError):
        raise UnsupportedAlgorithm("rsa-oaep", alg, OAEP_ALGORITHMS) from None


def _padding(hash_name: str | None) -> padding.OAEP:
    name = hash_name or "sha256"
    if name not in _HASHES:
        raise InvalidSignatureInput(f"the OAEP hash must be one of {', '.join(OAEP_HASHES)}")
    algorithm = _HASHES[name]()
    return padding.OAEP(mgf=padding.MGF1(algorithm), algorithm=algorithm, label=None)


def max_plaintext(alg: str, hash_name: str | None = None) -> int:
    """The longest plaintext one OAEP block holds: k - 2·hLen - 2 bytes (RFC 8017 §7.1.1)."""
    digest = _HASHES.get(hash_name or "sha256", hashes.SHA256)().digest_size
    return _bits(alg) // 8 - 2 * digest - 2


def _encrypt(alg: str, public: rsa.RSAPublicKey, plaintext: bytes,
             hash_name: str | None) -> bytes:
    pad = _padding(hash_name)
    limit = max_plaintext(alg, hash_name)
    if len(plaintext) > limit:
        raise InvalidSignatureInput(
            f"{alg} with OAEP-{hash_name or 'sha256'} encrypts at most {limit} bytes")
    return public.encrypt(bytes(plaintext), pad)


class OaepKey:
    """A loaded RSA private key used for OAEP. The repr names the algorithm only."""

    __slots__ = ("_private", "alg")

    def __init__(self, alg: str, private: bytes) -> None:
        bits = _bits(alg)
        wrong = ValueError(f"private material is not a valid {alg} private key")
        try:
            key = serialization.load_der_private_key(bytes(private), password=None)
        except (ValueError, TypeError, _PycaUnsupported):
            raise wrong from None
        if not isinstance(key, rsa.RSAPrivateKey) or key.key_size != bits:
            raise wrong
        self.alg = alg
        self._private = key

    def __repr__(self) -> str:
        return f"OaepKey(alg={self.alg!r})"

    def public_pem(self) -> str:
        return self._private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    def encrypt(self, plaintext: bytes, hash_name: str | None = None) -> bytes:
        """What a client does with the public key; the server offers it for AWS's Encrypt."""
        return _encrypt(self.alg, self._private.public_key(), plaintext, hash_name)

    def decrypt(self, ciphertext: bytes, hash_name: str | None = None) -> bytes:
        pad = _padding(hash_name)
        if len(ciphertext) != self._private.key_size // 8:
            raise InvalidCiphertext()
        try:
            return self._private.decrypt(bytes(ciphertext), pad)
        except ValueError:
            raise InvalidCiphertext() from None


def encrypt_with_public_pem(alg: str, public_pem: str, plaintext: bytes,
                            hash_name: str | None = None) -> bytes:
    """Encrypt to a key's SubjectPublicKeyInfo PEM, as a client would."""
    bits = _bits(alg)
    try:
        public = serialization.load_pem_public_key(public_pem.encode("ascii"))
    except (ValueError, UnicodeError, TypeError, AttributeError, _PycaUnsupported):
        raise ValueError(f"public_pem is not a valid {alg} public key") from None
    if not isinstance(public, rsa.RSAPublicKey) or public.key_size != bits:
        raise ValueError(f"public_pem is not a valid {alg} public key")
    return _encrypt(alg, public, plaintext, hash_name)
