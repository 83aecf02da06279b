"""A custodian drill's proof is made in the SDK from the share, which never leaves; the
server's check accepts it, and a mistake in the share is the caller's ``ValueError``."""

from __future__ import annotations

import base64

import pytest

from keyquorum.client import CustodianChallenge
from keyquorum.client._custodians import make_proof
from keyquorum.crypto import vss
from keyquorum.seal.custodian_proof import proof_context
from keyquorum.seal.shares import encode_share


@pytest.fixture(scope="module")
def dealt() -> tuple[list[str], list[bytes]]:
    _, shares, commitments = vss.split(3, 2)
    return [encode_share(s) for s in shares], commitments


def _challenge(commitments: list[bytes], index: int = 2) -> CustodianChallenge:
    return CustodianChallenge(challenge_id="ch-1", challenge=b"\x07" * 32, custodian="bob",
                              index=index, generation=4,
                              commitments=tuple(c.hex() for c in commitments))


def test_a_proof_made_by_the_sdk_passes_the_servers_check(
        dealt: tuple[list[str], list[bytes]]) -> None:
    shares, commitments = dealt
    challenge = _challenge(commitments)
    body = make_proof(challenge, shares[1])
    assert body["challenge_id"] == "ch-1" and shares[1] not in str(body)
    context = proof_context(challenge.challenge, "bob", 2, 4)
    assert vss.verify_possession(2, base64.b64decode(body["proof"]), commitments, context)


def test_a_malformed_share_is_a_value_error_naming_the_rule(
        dealt: tuple[list[str], list[bytes]]) -> None:
    _, commitments = dealt
    with pytest.raises(ValueError, match="share must look like kqs1-"):
        make_proof(_challenge(commitments), "not-a-share")


def test_another_custodians_share_is_a_value_error(
        dealt: tuple[list[str], list[bytes]]) -> None:
    shares, commitments = dealt
    with pytest.raises(ValueError, match="this is share 1, but bob holds share 2"):
        make_proof(_challenge(commitments), shares[0])


def test_a_share_from_another_dealing_is_a_value_error(
        dealt: tuple[list[str], list[bytes]]) -> None:
    _, other_shares, _ = vss.split(3, 2)
    _, commitments = dealt
    with pytest.raises(ValueError, match="does not match the seal's commitments"):
        make_proof(_challenge(commitments), encode_share(other_shares[1]))
