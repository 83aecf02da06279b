"""Feldman VSS and Schnorr proofs: any k shares recover the secret, a bad share
is caught alone, and a proof of possession only verifies where it was made."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl import bindings as sodium

from keyquorum.crypto.vss import (
    Share,
    combine,
    prove_possession,
    public_share,
    split,
    verify_possession,
    verify_share,
)

L = 2**252 + 27742317777372353535851937790883648493
CONTEXT = b"challenge=9f8e7d|custodian=alice"


def _scalar(value: int) -> bytes:
    return value.to_bytes(32, "little")


@pytest.fixture(scope="module")
def dealt() -> tuple[bytes, list[Share], list[bytes]]:
    return split(5, 3)


def test_every_k_subset_combines_to_the_secret(dealt) -> None:
    secret, shares, commitments = dealt
    assert len(shares) == 5 and len(commitments) == 3
    assert [s.index for s in shares] == [1, 2, 3, 4, 5]
    for k in (3, 4, 5):
        for subset in itertools.combinations(shares, k):
            assert combine(list(subset)) == secret
    assert combine(list(reversed(shares))) == secret


def test_fewer_than_k_shares_do_not_recover_the_secret(dealt) -> None:
    secret, shares, _ = dealt
    for subset in itertools.combinations(shares, 2):
        assert combine(list(subset)) != secret


def test_first_commitment_commits_to_the_secret(dealt) -> None:
    secret, _, commitments = dealt
    assert commitments[0] == sodium.crypto_scalarmult_ed25519_base_noclamp(bytes(secret))


def test_every_share_verifies_and_a_corrupted_one_does_not(dealt) -> None:
    _, shares, commitments = dealt
    for share in shares:
        assert verify_share(share, commitments)
        assert public_share(share.index, commitments) == (
            sodium.crypto_scalarmult_ed25519_base_noclamp(bytes(share.value))
        )
    share = shares[0]
    one = _scalar(1)
    corrupted = Share(share.index, sodium.crypto_core_ed25519_scalar_add(bytes(share.value), one))
    assert not verify_share(corrupted, commitments)
    assert not verify_share(Share(2, share.value), commitments)  # right value, wrong index


def test_non_canonical_or_malformed_share_values_fail(dealt) -> None:
    _, shares, commitments = dealt
    value = shares[0].value
    # value + L is the same residue but not canonical: refused.
    non_canonical = int.from_bytes(value, "little") + L  # < 2^254, still 32 bytes
    assert not verify_share(Share(1, _scalar(non_canonical)), commitments)
    assert not verify_share(Share(1, value[:31]), commitments)
    assert not verify_share(Share(1, bytes(32)), commitments)
    assert not verify_share(Share(0, value), commitments)
    assert not verify_share(Share(256, value), commitments)


def test_verify_share_with_bad_commitments_is_false(dealt) -> None:
    _, shares, commitments = dealt
    assert not verify_share(shares[0], [])
    assert not verify_share(shares[0], [bytes(32), *commitments[1:]])
    assert not verify_share(shares[0], commitments[:2])
    assert not verify_share(shares[0], [*commitments[:2], b"\x01" + bytes(31)])  # identity


def test_given_secret_is_shared() -> None:
    secret = _scalar(123456789)
    returned, shares, commitments = split(3, 2, secret)
    assert returned == secret
    assert combine(shares[1:]) == secret
    assert all(verify_share(s, commitments) for s in shares)


@pytest.mark.parametrize("bad", [bytes(32), _scalar(L), b"\xff" * 32, bytes(31)])
def test_given_secret_must_be_canonical_and_non_zero(bad: bytes) -> None:
    with pytest.raises(ValueError, match="canonical non-zero"):
        split(3, 2, bad)


def test_threshold_of_one_is_a_constant_polynomial() -> None:
    secret, shares, commitments = split(4, 1)
    assert len(commitments) == 1
    assert all(s.value == secret for s in shares)
    assert all(combine([s]) == secret for s in shares)


def test_maximum_share_count() -> None:
    secret, shares, commitments = split(255, 2)
    assert combine([shares[0], shares[254]]) == secret
    assert verify_share(shares[254], commitments)


@pytest.mark.parametrize("n, k", [(0, 0), (3, 0), (2, 3), (256, 2), (1, 2), (-1, 1)])
def test_threshold_rule(n: int, k: int) -> None:
    with pytest.raises(ValueError, match="1 <= k <= n <= 255"):
        split(n, k)


def test_combine_rules(dealt) -> None:
    _, shares, _ = dealt
    with pytest.raises(ValueError, match="distinct"):
        combine([shares[0], shares[0], shares[1]])
    with pytest.raises(ValueError):
        combine([])
    with pytest.raises(ValueError):
        combine([Share(0, shares[0].value)])


def test_share_repr_hides_the_value(dealt) -> None:
    _, shares, _ = dealt
    assert repr(shares[0]) == "Share(index=1)"
    assert shares[0].value.hex() not in repr(shares[0])


def test_proof_of_possession_verifies(dealt) -> None:
    _, shares, commitments = dealt
    for share in shares:
        proof = prove_possession(share, commitments, CONTEXT)
        assert len(proof) == 64
        assert verify_possession(share.index, proof, commitments, CONTEXT)


def test_proof_fails_for_another_context_index_or_commitments(dealt) -> None:
    _, shares, commitments = dealt
    proof = prove_possession(shares[0], commitments, CONTEXT)
    assert not verify_possession(1, proof, commitments, b"challenge=other|custodian=alice")
    assert not verify_possession(1, proof, commitments, b"challenge=9f8e7d|custodian=bob")
    assert not verify_possession(1, proof, commitments, b"")
    assert not verify_possession(2, proof, commitments, CONTEXT)
    _, _, other_commitments = split(5, 3)
    assert not verify_possession(1, proof, other_commitments, CONTEXT)


def test_forged_and_malformed_proofs_fail(dealt) -> None:
    _, shares, commitments = dealt
    proof = prove_possession(shares[0], commitments, CONTEXT)
    for i in range(64):
        forged = bytearray(proof)
        forged[i] ^= 0x01
        assert not verify_possession(1, bytes(forged), commitments, CONTEXT)
    # A proof made with a share of a different dealing does not transfer.
    _, other_shares, other_commitments = split(5, 3)
    assert not verify_possession(
        1, prove_possession(other_shares[0], other_commitments, CONTEXT), commitments, CONTEXT
    )
    # R = identity, z = 0; z non-canonical; wrong lengths; garbage.
    assert not verify_possession(1, b"\x01" + bytes(31) + bytes(32), commitments, CONTEXT)
    assert not verify_possession(1, proof[:32] + _scalar(L), commitments, CONTEXT)
    assert not verify_possession(1, proof[:-1], commitments, CONTEXT)
    assert not verify_possession(1, proof + b"\x00", commitments, CONTEXT)
    assert not verify_possession(1, bytes(64), commitments, CONTEXT)
    assert not verify_possession(0, proof, commitments, CONTEXT)


def test_a_wrong_share_cannot_prove(dealt) -> None:
    _, shares, commitments = dealt
    with pytest.raises(ValueError, match="does not match"):
        prove_possession(Share(1, shares[1].value), commitments, CONTEXT)


def test_proofs_are_randomised(dealt) -> None:
    _, shares, commitments = dealt
    first = prove_possession(shares[0], commitments, CONTEXT)
    second = prove_possession(shares[0], commitments, CONTEXT)
    assert first != second
    assert verify_possession(1, second, commitments, CONTEXT)


@settings(max_examples=25, deadline=None)
@given(data=st.data(), n=st.integers(min_value=1, max_value=12))
def test_property_any_k_distinct_shares_recover_the_secret(data: st.DataObject, n: int) -> None:
    k = data.draw(st.integers(min_value=1, max_value=n))
    secret_int = data.draw(st.integers(min_value=1, max_value=L - 1))
    secret, shares, commitments = split(n, k, _scalar(secret_int))
    chosen = data.draw(st.permutations(shares).map(lambda p: p[:k]))
    assert combine(list(chosen)) == secret == _scalar(secret_int)
    assert all(verify_share(s, commitments) for s in chosen)
