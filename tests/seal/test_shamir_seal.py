"""The Shamir seal: printable shares, verification at submission, any k opens the root."""

from __future__ import annotations

import itertools

import pytest

from keyquorum.errors import InvalidRequest
from keyquorum.seal.shamir import UnsealProgress, create_shamir_seal
from keyquorum.seal.shares import decode_share, encode_share

ROOT = bytes(range(32))


def test_every_k_subset_opens_the_root_key() -> None:
    config, shares = create_shamir_seal(ROOT, 5, 3)
    for subset in itertools.combinations(shares, 3):
        progress = UnsealProgress()
        results = [progress.submit(config, share) for share in subset]
        assert results[:2] == [None, None]
        assert results[2] == ROOT


def test_lost_share_still_unseals_with_quorum() -> None:
    config, shares = create_shamir_seal(ROOT, 3, 2)
    del shares[0]  # one custodian lost theirs
    progress = UnsealProgress()
    assert progress.submit(config, shares[0]) is None
    assert progress.submit(config, shares[1]) == ROOT


def test_a_share_from_another_seal_is_refused_alone_and_progress_is_kept() -> None:
    config, shares = create_shamir_seal(ROOT, 3, 2)
    _, foreign = create_shamir_seal(ROOT, 3, 2)
    progress = UnsealProgress()
    assert progress.submit(config, shares[0]) is None
    with pytest.raises(InvalidRequest, match="commitments"):
        progress.submit(config, foreign[1])
    assert progress.count == 1
    assert progress.submit(config, shares[1]) == ROOT


def test_a_typo_is_caught_by_the_checksum() -> None:
    config, shares = create_shamir_seal(ROOT, 3, 2)
    text = shares[0]
    position = text.index("-", 5) + 3
    typo = text[:position] + ("a" if text[position] != "a" else "b") + text[position + 1:]
    with pytest.raises(InvalidRequest, match="typo"):
        UnsealProgress().submit(config, typo)


def test_the_same_share_twice_is_refused() -> None:
    config, shares = create_shamir_seal(ROOT, 3, 2)
    progress = UnsealProgress()
    progress.submit(config, shares[0])
    with pytest.raises(InvalidRequest, match="already"):
        progress.submit(config, shares[0])


@pytest.mark.parametrize(("n", "k"), [(0, 0), (3, 4), (33, 2), (3, 0)])
def test_bad_split_parameters(n: int, k: int) -> None:
    with pytest.raises(InvalidRequest):
        create_shamir_seal(ROOT, n, k)


def test_share_text_round_trips_and_never_shows_in_repr() -> None:
    _, shares = create_shamir_seal(ROOT, 2, 2)
    share = decode_share(shares[0])
    assert encode_share(share) == shares[0]
    assert share.value.hex() not in repr(share)


@pytest.mark.parametrize("text", ["", "kqs1-01", "nope-01-aaaa-00000000", "kqs1-00-aa-00",
                                  "kqs1-xx-aa-00", 42])
def test_malformed_share_text(text: object) -> None:
    with pytest.raises(InvalidRequest):
        decode_share(text)
