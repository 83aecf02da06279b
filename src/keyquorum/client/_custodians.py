"""Custodian drills, keys and rekey in the SDK: requests, answers, and the local proofs,
with no I/O.

A drill never sends the share: ``custodian_challenge`` fetches a fresh
challenge, ``make_proof`` computes a Schnorr proof of possession locally from
the share and the challenge (bound to the challenge, the custodian's name, the
share index and the seal generation), and only the proof goes to the server.
``Client.prove_share`` does all three. Registering a custodian's public key is
the same with ``make_key_proof``, whose proof also names the key's fingerprint.
New shares come back only sealed to their custodians (``EncryptedShare``);
opening one is ``keyquorum.client._custodian_keys``, on the custodian's machine.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._models import EncryptedShare, encrypted_shares, parse_time
from ._protocol import Call, _one, _put, _segment


@dataclass(frozen=True)
class CustodianChallenge:
    """A fresh challenge for one custodian, with what is needed to answer it offline."""

    challenge_id: str
    challenge: bytes
    custodian: str
    index: int
    generation: int
    commitments: tuple[str, ...]
    expires_at: datetime | None = None
    key_fingerprint: str | None = None  # the public key registered for this custodian

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> CustodianChallenge:
        return cls(challenge_id=str(body["challenge_id"]),
                   challenge=base64.b64decode(body["challenge"]),
                   custodian=str(body["custodian"]), index=int(body["index"]),
                   generation=int(body["generation"]),
                   commitments=tuple(body.get("commitments") or ()),
                   expires_at=parse_time(body.get("expires_at")),
                   key_fingerprint=body.get("key_fingerprint"))


@dataclass(frozen=True)
class CustodianEntry:
    """One custodian; ``acknowledged`` once they proved their share after it was handed
    out (only then does it count toward the quorum margin)."""

    index: int
    name: str
    last_verified_at: datetime | None = None
    verified_by: str | None = None  # proof | unseal
    issued_at: datetime | None = None
    acknowledged: bool = False
    acknowledged_at: datetime | None = None
    delivery: str | None = None  # plaintext | encrypted
    recipient: str | None = None  # the key fingerprint the share was sealed to
    key_fingerprint: str | None = None  # the key registered in the custodian's name

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> CustodianEntry:
        return cls(index=int(body["index"]), name=str(body["name"]),
                   last_verified_at=parse_time(body.get("last_verified_at")),
                   verified_by=body.get("verified_by"),
                   issued_at=parse_time(body.get("issued_at")),
                   acknowledged=bool(body.get("acknowledged")),
                   acknowledged_at=parse_time(body.get("acknowledged_at")),
                   delivery=body.get("delivery"), recipient=body.get("recipient"),
                   key_fingerprint=body.get("key_fingerprint"))


@dataclass(frozen=True)
class CustodianStatus:
    """Every custodian's last drill and the quorum margin (``warning`` when it is <= 0)."""

    threshold: int
    margin: int
    drill_window_days: int
    custodians: tuple[CustodianEntry, ...]
    verified: int = 0
    shares: int = 0
    generation: int = 1
    commitments: tuple[str, ...] = ()
    warning: str | None = None
    seal_fingerprint: str | None = None  # what restore and drill pin backups to (--expect)
    unacknowledged: tuple[str, ...] = ()  # custodians who never proved their share

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> CustodianStatus:
        return cls(threshold=int(body["threshold"]), margin=int(body["margin"]),
                   drill_window_days=int(body["drill_window_days"]),
                   custodians=tuple(CustodianEntry.from_json(c)
                                    for c in body.get("custodians") or ()),
                   verified=int(body.get("verified") or 0), shares=int(body.get("shares") or 0),
                   generation=int(body.get("generation") or 1),
                   commitments=tuple(body.get("commitments") or ()),
                   warning=body.get("warning"), seal_fingerprint=body.get("seal_fingerprint"),
                   unacknowledged=tuple(body.get("unacknowledged") or ()))


@dataclass(frozen=True)
class DeliveredShare:
    """A custodian's sealed share as the server keeps it, with what to check it against:
    ``recipient`` (the key the server sealed it to) and ``key_fingerprint`` (the key
    registered in the name now) must both be the custodian's own."""

    custodian: str
    index: int
    generation: int
    envelope: str
    recipient: str | None
    key_fingerprint: str | None
    commitments: tuple[str, ...] = ()
    acknowledged_at: datetime | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> DeliveredShare:
        return cls(custodian=str(body["custodian"]), index=int(body["index"]),
                   generation=int(body["generation"]), envelope=str(body["envelope"]),
                   recipient=body.get("recipient"), key_fingerprint=body.get("key_fingerprint"),
                   commitments=tuple(body.get("commitments") or ()),
                   acknowledged_at=parse_time(body.get("acknowledged_at")))


@dataclass(frozen=True)
class CustodianKeyRegistration:
    custodian: str
    index: int
    fingerprint: str
    registered_at: datetime | None = None
    replaced: str | None = None  # the fingerprint of the key it replaced

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> CustodianKeyRegistration:
        return cls(custodian=str(body["custodian"]), index=int(body["index"]),
                   fingerprint=str(body["fingerprint"]),
                   registered_at=parse_time(body.get("registered_at")),
                   replaced=body.get("replaced"))


@dataclass(frozen=True)
class RekeyStatus:
    """A rekey ceremony; once ``complete``, ``encrypted_shares`` holds the new shares, each
    sealed to its custodian's key (no share is ever answered in the clear)."""

    started: bool
    progress: int
    required: int
    generation: int
    nonce: str | None = None
    kind: str | None = None
    new_shares: int | None = None
    new_threshold: int | None = None
    new_custodians: tuple[str, ...] = ()
    submitted: tuple[int, ...] = ()
    expires_at: datetime | None = None
    replace: dict[str, str] | None = None
    complete: bool = False
    cancelled: bool = False
    encrypted_shares: tuple[EncryptedShare, ...] = field(default=(), repr=False)
    threshold: int | None = None  # of the new shares, once complete
    custodians: tuple[str, ...] = ()
    commitments: tuple[str, ...] = ()
    recipients: tuple[dict[str, str], ...] = ()  # {custodian, fingerprint, source} per share
    keys_replaced: tuple[str, ...] = ()
    seal_fingerprint: str | None = None  # the new one, once complete

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> RekeyStatus:
        return cls(started=bool(body.get("started")), progress=int(body.get("progress") or 0),
                   required=int(body.get("required") or 0),
                   generation=int(body.get("generation") or 1), nonce=body.get("nonce"),
                   kind=body.get("kind"), new_shares=body.get("new_shares"),
                   new_threshold=body.get("new_threshold"),
                   new_custodians=tuple(body.get("new_custodians") or ()),
                   submitted=tuple(body.get("submitted") or ()),
                   expires_at=parse_time(body.get("expires_at")),
                   replace=body.get("replace"), complete=bool(body.get("complete")),
                   cancelled=bool(body.get("cancelled")),
                   encrypted_shares=encrypted_shares(body),
                   threshold=body.get("threshold"),
                   custodians=tuple(body.get("custodians") or ()),
                   commitments=tuple(body.get("commitments") or ()),
                   recipients=tuple(body.get("recipients") or ()),
                   keys_replaced=tuple(body.get("keys_replaced") or ()),
                   seal_fingerprint=body.get("seal_fingerprint"))


@dataclass(frozen=True)
class SealAddStatus:
    """A proposed seal waiting for custodians: it joins the seal set at ``required`` shares."""

    started: bool
    progress: int
    required: int
    nonce: str | None = None
    seal: dict[str, Any] | None = None  # the proposed (or, once complete, added) seal
    submitted: tuple[int, ...] = ()
    generation: int | None = None
    started_by: str | None = None
    expires_at: datetime | None = None
    complete: bool = False
    cancelled: bool = False

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> SealAddStatus:
        return cls(started=bool(body.get("started")), progress=int(body.get("progress") or 0),
                   required=int(body.get("required") or 0), nonce=body.get("nonce"),
                   seal=body.get("seal"), submitted=tuple(body.get("submitted") or ()),
                   generation=body.get("generation"), started_by=body.get("started_by"),
                   expires_at=parse_time(body.get("expires_at")),
                   complete=bool(body.get("complete")), cancelled=bool(body.get("cancelled")))


def make_proof(challenge: CustodianChallenge, share: str,
               key_fingerprint: str | None = None) -> dict[str, str]:
    """The proof body for ``challenge``, computed here; ``ValueError`` if the share cannot.

    With ``key_fingerprint`` it is a key registration's proof: bound to that key too.
    """
    # The share format, the proof and its context are the server's own code: one definition
    # of each, so a drill cannot pass here and fail there. They are imported here, not at the
    # top, so that importing the SDK loads no server module and only a drill needs libsodium.
    # decode_share raises the server's InvalidRequest for a malformed share; the SDK's
    # callers get ValueError, as for every other mistake in their own arguments.
    from keyquorum.crypto import vss
    from keyquorum.errors import InvalidRequest
    from keyquorum.seal.custodian_proof import key_registration_context, proof_context
    from keyquorum.seal.shares import decode_share

    try:
        parsed = decode_share(share)
    except InvalidRequest as exc:
        raise ValueError(exc.message) from None
    if parsed.index != challenge.index:
        raise ValueError(f"this is share {parsed.index}, but {challenge.custodian} holds share "
                         f"{challenge.index}")
    commitments = [bytes.fromhex(c) for c in challenge.commitments]
    if not vss.verify_share(parsed, commitments):
        raise ValueError("the share does not match the seal's commitments (an old share, "
                         "from before a rekey, or another service's)")
    if key_fingerprint is None:
        context = proof_context(challenge.challenge, challenge.custodian, challenge.index,
                                challenge.generation)
    else:
        context = key_registration_context(challenge.challenge, challenge.custodian,
                                           challenge.index, challenge.generation,
                                           key_fingerprint)
    proof = vss.prove_possession(parsed, commitments, context)
    return {"challenge_id": challenge.challenge_id, "proof": base64.b64encode(proof).decode()}


def custodian_status() -> Call[CustodianStatus]:
    return Call("GET", "/v1/sys/custodians", _one(CustodianStatus.from_json))


def custodian_challenge(name: str) -> Call[CustodianChallenge]:
    return Call("POST", f"/v1/sys/custodians/{_segment(name, 'custodian name')}/challenge",
                _one(CustodianChallenge.from_json), json={}, auth=False)


def custodian_share(name: str) -> Call[DeliveredShare]:
    return Call("GET", f"/v1/sys/custodians/{_segment(name, 'custodian name')}/share",
                _one(DeliveredShare.from_json), auth=False)


def register_custodian_key(name: str, proof: Mapping[str, str],
                           public_key: str) -> Call[CustodianKeyRegistration]:
    return Call("POST", f"/v1/sys/custodians/{_segment(name, 'custodian name')}/key",
                _one(CustodianKeyRegistration.from_json),
                json={**proof, "public_key": public_key}, auth=False)


def rekey_init(*, shares: int | None = None, threshold: int | None = None,
               custodians: Sequence[str] | None = None, force: bool = False,
               replace: tuple[str, str] | None = None, reissue: bool = False,
               approval_id: str | None = None,
               custodian_keys: Mapping[str, str] | None = None) -> Call[RekeyStatus]:
    """One plan: new ``shares``/``threshold``, ``replace=(old, new)``, or ``reissue``;
    ``custodian_keys`` gives public keys (name -> PEM) for custodians without one."""
    plans = sum((shares is not None or threshold is not None, replace is not None, reissue))
    if plans != 1:
        raise ValueError("give one plan: shares and threshold, replace, or reissue")
    if replace is not None:
        body: dict[str, Any] = {"replace": {"custodian": replace[0], "with": replace[1]}}
    elif reissue:
        body = {"reissue": True}
    else:
        body = _put({"shares": shares, "threshold": threshold},
                    custodians=None if custodians is None else list(custodians),
                    force=True if force else None)
    _put(body, approval_id=approval_id,
         custodian_keys=dict(custodian_keys) if custodian_keys else None)
    return Call("POST", "/v1/sys/rekey/init", _one(RekeyStatus.from_json), json=body)


def rekey_status() -> Call[RekeyStatus]:
    return Call("GET", "/v1/sys/rekey", _one(RekeyStatus.from_json), auth=False)


def rekey_submit(nonce: str, share: str) -> Call[RekeyStatus]:
    return Call("POST", "/v1/sys/rekey/update", _one(RekeyStatus.from_json),
                json={"nonce": nonce, "share": share.strip()}, auth=False)


def rekey_cancel() -> Call[RekeyStatus]:
    return Call("DELETE", "/v1/sys/rekey", _one(RekeyStatus.from_json))


def add_seal(kind: str, params: Mapping[str, Any], *, seal_id: str | None = None,
             approval_id: str | None = None) -> Call[SealAddStatus]:
    """Propose a seal: it is wrapped now and added once custodians give a quorum of shares."""
    body = _put({"type": kind, **params}, id=seal_id, approval_id=approval_id)
    return Call("POST", "/v1/sys/seals", _one(SealAddStatus.from_json), json=body)


def seal_add_status() -> Call[SealAddStatus]:
    return Call("GET", "/v1/sys/seal-add", _one(SealAddStatus.from_json), auth=False)


def seal_add_submit(nonce: str, share: str) -> Call[SealAddStatus]:
    return Call("POST", "/v1/sys/seal-add/update", _one(SealAddStatus.from_json),
                json={"nonce": nonce, "share": share.strip()}, auth=False)


def seal_add_cancel() -> Call[SealAddStatus]:
    return Call("DELETE", "/v1/sys/seal-add", _one(SealAddStatus.from_json))
