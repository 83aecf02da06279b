"""Feldman verifiable secret sharing and Schnorr proofs of possession.

The group is Ed25519's prime-order subgroup, of order
L = 2^252 + 27742317777372353535851937790883648493, and every operation on
scalars and points is libsodium's (``nacl.bindings``): no curve or modular
arithmetic is written here, and secret scalars never become Python integers
(whose arithmetic is not constant-time).

- ``split`` picks a random polynomial f of degree k-1 with f(0) = secret and
  hands out shares (i, f(i)) for i = 1..n, with commitments C_j = g^{a_j}.
- ``verify_share`` checks one share alone: g^{f(i)} == Σ C_j · i^j.
- ``combine`` interpolates f(0) from any k shares (Lagrange at zero).
- ``prove_possession`` lets a custodian show it holds the share behind the
  public value g^{f(i)} without sending it: a Fiat-Shamir Schnorr proof whose
  challenge hashes a caller-supplied context (the server's fresh challenge and
  the custodian's name), so a proof cannot be replayed elsewhere.

Scalars are 32-byte little-endian, canonical (< L). Share indexes are public
small integers (1..255) and become scalars by ``int.to_bytes(32, "little")``.

Every value derived from a secret (the polynomial's coefficients, share values,
partial sums, the recovered secret) is computed into a ``bytearray`` by
``crypto.scalars`` and wiped here once it is no longer needed; what is returned
(a secret, share values) is the caller's to wipe (``crypto.wipe``). Only public
values (commitments, indexes, proofs) go through PyNaCl's ``bytes`` bindings.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from nacl import bindings as _sodium
from nacl.exceptions import CryptoError as _SodiumCryptoError
from nacl.exceptions import RuntimeError as _SodiumRuntimeError
from nacl.exceptions import TypeError as _SodiumTypeError
from nacl.exceptions import ValueError as _SodiumValueError

from keyquorum.crypto import scalars
from keyquorum.crypto.wipe import wipe

__all__ = [
    "Share",
    "combine",
    "prove_possession",
    "public_share",
    "split",
    "verify_possession",
    "verify_share",
]

SCALAR_SIZE = 32
POINT_SIZE = 32
MAX_SHARES = 255
PROOF_SIZE = POINT_SIZE + SCALAR_SIZE

# Domain separation for the Fiat-Shamir challenge: a hash input built for this
# proof can never collide with one built for any other protocol.
_POP_DOMAIN = b"keyquorum/vss/schnorr-proof-of-possession/v1"

_ZERO = bytes(SCALAR_SIZE)
# libsodium signals "identity point / zero scalar / not a valid point" this way.
_SODIUM_ERRORS = (_SodiumRuntimeError, _SodiumValueError, _SodiumTypeError, _SodiumCryptoError)


@dataclass(frozen=True)
class Share:
    """One custodian's share: a public index and a secret scalar (kept out of repr)."""

    index: int
    value: bytes | bytearray = field(repr=False)  # a bytearray to be wiped after use


# -- scalar helpers (all arithmetic is libsodium's) --------------------------


_random_scalar = scalars.random_scalar
_is_canonical = scalars.is_canonical


def _is_zero(scalar: bytes | bytearray) -> bool:
    return hmac.compare_digest(scalar, _ZERO)


def _index_scalar(index: int) -> bytes:
    return index.to_bytes(SCALAR_SIZE, "little")


def _check_index(index: int) -> None:
    if not isinstance(index, int) or isinstance(index, bool) or not 1 <= index <= MAX_SHARES:
        raise ValueError(f"share index must be an integer from 1 to {MAX_SHARES}")


def _base_mul(scalar: bytes | bytearray) -> bytes:
    """g^scalar. libsodium refuses a zero scalar (the identity), as we want."""
    return scalars.base_mul(scalar)


def _commitment_sum(index: int, commitments: list[bytes]) -> bytes:
    """Σ_j C_j · index^j, the public share g^{f(index)}; raises on invalid points."""
    if not commitments:
        raise ValueError("commitments must not be empty")
    x = _index_scalar(index)
    power = _index_scalar(1)
    total: bytes | None = None
    for commitment in commitments:
        if not (
            isinstance(commitment, bytes)
            and len(commitment) == POINT_SIZE
            and _sodium.crypto_core_ed25519_is_valid_point(commitment)
        ):
            raise ValueError("every commitment must be a valid Ed25519 group element")
        term = _sodium.crypto_scalarmult_ed25519_noclamp(power, commitment)
        total = term if total is None else _sodium.crypto_core_ed25519_add(total, term)
        power = _sodium.crypto_core_ed25519_scalar_mul(power, x)
    assert total is not None
    return total


# -- Feldman VSS --------------------------------------------------------------


def split(
    n: int, k: int, secret: bytes | bytearray | None = None
) -> tuple[bytes | bytearray, list[Share], list[bytes]]:
    """Split ``secret`` (or a fresh random scalar) into ``n`` shares, any ``k`` recover it.

    Returns ``(secret_scalar, shares, commitments)``; the fresh secret and the share
    values are bytearrays for the caller to wipe.
    """
    for name, value in (("n", n), ("k", k)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{name} must be an integer")
    if not 1 <= k <= n <= MAX_SHARES:
        raise ValueError(f"threshold must satisfy 1 <= k <= n <= {MAX_SHARES}")
    if secret is None:
        secret = _random_scalar()
    elif not _is_canonical(secret) or _is_zero(secret):
        raise ValueError("secret must be a 32-byte canonical non-zero Ed25519 scalar")
    coefficients: list[bytes | bytearray] = [secret]
    coefficients += [_random_scalar() for _ in range(k - 1)]
    # A zero coefficient would make its commitment the identity, which libsodium
    # rejects; the chance is 2^-252 per coefficient, so simply draw again.
    for j in range(1, k):
        while _is_zero(coefficients[j]):
            coefficients[j] = _random_scalar()
    commitments = [_base_mul(a) for a in coefficients]
    shares = [Share(i, _evaluate(coefficients, i)) for i in range(1, n + 1)]
    for coefficient in coefficients[1:]:  # the secret itself is the caller's
        if isinstance(coefficient, bytearray):
            wipe(coefficient)
    return secret, shares, commitments


def _evaluate(coefficients: list[bytes | bytearray], index: int) -> bytearray:
    """f(index) by Horner's rule, in libsodium scalar arithmetic (into buffers)."""
    x = _index_scalar(index)
    acc = bytearray(coefficients[-1])
    product = bytearray(SCALAR_SIZE)
    for a in reversed(coefficients[:-1]):
        scalars.mul_into(product, acc, x)
        scalars.add_into(acc, product, a)
    wipe(product)
    return acc


def verify_share(share: Share, commitments: list[bytes]) -> bool:
    """True if ``share`` lies on the committed polynomial: g^value == Σ C_j · index^j."""
    try:
        _check_index(share.index)
        if not _is_canonical(share.value):
            return False
        expected = _commitment_sum(share.index, commitments)
        return hmac.compare_digest(_base_mul(share.value), expected)
    except (ValueError, *_SODIUM_ERRORS):
        return False


def public_share(index: int, commitments: list[bytes]) -> bytes:
    """g^{f(index)}: what share ``index`` commits to, computable by anyone."""
    _check_index(index)
    try:
        return _commitment_sum(index, commitments)
    except _SODIUM_ERRORS:
        raise ValueError("commitments do not define a valid public share") from None


def combine(shares: list[Share]) -> bytearray:
    """Recover f(0) from shares by Lagrange interpolation at zero.

    It needs at least k shares; with fewer it returns a wrong scalar (Shamir
    cannot tell), so callers check ``verify_share`` and the result against the
    stored commitment C_0. The secret is returned in a bytearray for the caller to
    wipe; every partial sum is wiped here.
    """
    if not shares:
        raise ValueError("at least one share is required")
    indexes = [s.index for s in shares]
    for index in indexes:
        _check_index(index)
    if len(set(indexes)) != len(indexes):
        raise ValueError("share indexes must be distinct")
    for s in shares:
        if not _is_canonical(s.value):
            raise ValueError(f"share {s.index} is not a canonical scalar")
    secret = bytearray(SCALAR_SIZE)
    term = bytearray(SCALAR_SIZE)
    total = bytearray(SCALAR_SIZE)
    try:
        for s in shares:
            # λ_i = Π x_j / (x_j - x_i) is public (indexes only); λ_i · s_i is not.
            coefficient = _lagrange_at_zero(s.index, [o.index for o in shares])
            scalars.mul_into(term, coefficient, s.value)
            scalars.add_into(total, secret, term)
            secret[:] = total
        return secret
    finally:
        wipe(term)
        wipe(total)


def _lagrange_at_zero(index: int, indexes: list[int]) -> bytes:
    """λ_i = Π_{j≠i} x_j / (x_j - x_i): public, from the share indexes alone."""
    xi = _index_scalar(index)
    numerator = _index_scalar(1)
    denominator = _index_scalar(1)
    for other in indexes:
        if other == index:
            continue
        xj = _index_scalar(other)
        # indexes are distinct, so no factor is zero.
        numerator = _sodium.crypto_core_ed25519_scalar_mul(numerator, xj)
        denominator = _sodium.crypto_core_ed25519_scalar_mul(
            denominator, _sodium.crypto_core_ed25519_scalar_sub(xj, xi)
        )
    return _sodium.crypto_core_ed25519_scalar_mul(
        numerator, _sodium.crypto_core_ed25519_scalar_invert(denominator)
    )


# -- Schnorr proof of possession ------------------------------------------------


def _challenge(context: bytes, index: int, public: bytes, commitment: bytes) -> bytes:
    """c = H(domain || len(context) || context || index || g^{s_i} || R) mod L.

    Every variable-length field is length-prefixed so two different inputs can
    never hash the same bytes.
    """
    digest = hashlib.sha512(
        _POP_DOMAIN
        + len(context).to_bytes(4, "big")
        + context
        + index.to_bytes(1, "big")
        + public
        + commitment
    ).digest()
    return _sodium.crypto_core_ed25519_scalar_reduce(digest)


def prove_possession(share: Share, commitments: list[bytes], context: bytes) -> bytes:
    """Prove knowledge of ``share.value`` without revealing it: R(32) || z(32)."""
    _check_index(share.index)
    if not isinstance(context, bytes):
        raise ValueError("context must be bytes")
    if not verify_share(share, commitments):
        raise ValueError("the share does not match the commitments")
    public = public_share(share.index, commitments)
    while True:
        r = _random_scalar()
        if not _is_zero(r):
            break
    commitment = _base_mul(r)
    c = _challenge(context, share.index, public, commitment)
    product = bytearray(SCALAR_SIZE)
    z = bytearray(SCALAR_SIZE)
    scalars.mul_into(product, c, share.value)  # c · s_i would give the share away
    scalars.add_into(z, r, product)
    wipe(product)
    wipe(r)  # the nonce: with z public, r would give the share away too
    proof = commitment + bytes(z)
    return proof


def verify_possession(
    index: int, proof: bytes, commitments: list[bytes], context: bytes
) -> bool:
    """True if ``proof`` shows possession of share ``index`` under ``context``."""
    try:
        _check_index(index)
        if not isinstance(proof, bytes) or len(proof) != PROOF_SIZE:
            return False
        if not isinstance(context, bytes):
            return False
        commitment, z = proof[:POINT_SIZE], proof[POINT_SIZE:]
        if not _sodium.crypto_core_ed25519_is_valid_point(commitment) or not _is_canonical(z):
            return False
        public = _commitment_sum(index, commitments)
        c = _challenge(context, index, public, commitment)
        # g^z == R + c·P
        right = _sodium.crypto_core_ed25519_add(
            commitment, _sodium.crypto_scalarmult_ed25519_noclamp(c, public)
        )
        return hmac.compare_digest(_base_mul(z), right)
    except (ValueError, *_SODIUM_ERRORS):
        return False
