"""The seal and ceremony answers keep their secrets out of ``repr`` (a log line, a traceback)."""

from __future__ import annotations

from keyquorum.service.ceremony_values import GenerateRootStatus, RekeyStatus, SealAddStatus
from keyquorum.service.sys_values import DeliveredShare, SealStatus


def test_nonces_tokens_and_envelopes_stay_out_of_repr() -> None:
    secret = "s3cr3t-value-0123456789"
    values = [
        SealStatus(initialized=True, sealed=True, threshold=2, shares=3, progress=1, seals=(),
                   version="x", nonce=secret),
        SealAddStatus(stage="collecting", progress=1, required=2, nonce=secret),
        RekeyStatus(stage="complete", progress=2, required=2,
                    encrypted_shares=({"envelope": secret},)),
        GenerateRootStatus(stage="complete", progress=2, required=2, nonce=secret,
                           encoded_token=secret),
        DeliveredShare(custodian="a", index=1, generation=1, delivery="encrypted",
                       recipient=None, envelope=secret, key_fingerprint=None,
                       acknowledged_at=None, commitments=()),
    ]
    for value in values:
        assert secret not in repr(value), type(value).__name__
