"""Break glass in the SDK: a custodian quorum mints a new root token. Requests and answers,
no I/O (``Client`` and ``AsyncClient`` run the calls).

The server answers the token only sealed to the requester's public key
(``encoded_token``); ``GenerateRootStatus.open_token`` opens it with the private key
on this machine. No call carries a token: break glass is for when there is none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._models import parse_time
from ._protocol import Call, Duration, _duration, _one, _put


@dataclass(frozen=True)
class GenerateRootStatus:
    """An attempt; ``nonce`` only in answers to its submitters, ``encoded_token`` only in
    the answer to the share that completed the quorum."""

    started: bool
    progress: int
    required: int
    attempt: str | None = None
    complete: bool = False
    cancelled: bool = False
    nonce: str | None = field(default=None, repr=False)
    submitted: tuple[int, ...] = ()
    opened_by: str | None = None
    public_key_fingerprint: str | None = None
    started_at: datetime | None = None
    expires_at: datetime | None = None
    accessor: str | None = None  # the new root token's, once complete
    encoded_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> GenerateRootStatus:
        return cls(started=bool(body.get("started")), progress=int(body.get("progress") or 0),
                   required=int(body.get("required") or 0), attempt=body.get("attempt"),
                   complete=bool(body.get("complete")), cancelled=bool(body.get("cancelled")),
                   nonce=body.get("nonce"), submitted=tuple(body.get("submitted") or ()),
                   opened_by=body.get("opened_by"),
                   public_key_fingerprint=body.get("public_key_fingerprint"),
                   started_at=parse_time(body.get("started_at")),
                   expires_at=parse_time(body.get("expires_at")),
                   accessor=body.get("accessor"), encoded_token=body.get("encoded_token"))

    def open_token(self, private_pem: str) -> str:
        """The new root token, opened with the requester's private key (this machine's).

        ``ValueError`` if this answer carries no token or the key is not a private key
        armor; ``keyquorum.crypto.errors.InvalidCiphertext`` if it is not the key (or the
        attempt) the token was sealed for.
        """
        if not self.complete or self.encoded_token is None or self.attempt is None:
            raise ValueError("this answer carries no token: only the share that completes "
                             "the quorum is answered one")
        from keyquorum.auth.break_glass import open_root_token

        return open_root_token(private_pem, self.encoded_token, self.attempt)


def generate_root_init(public_pem: str, share: str,
                       ttl: Duration | None = None) -> Call[GenerateRootStatus]:
    body = _put({"public_key": public_pem, "share": share.strip()},
                ttl=None if ttl is None else _duration(ttl))
    return Call("POST", "/v1/sys/generate-root/init", _one(GenerateRootStatus.from_json),
                json=body, auth=False)


def generate_root_status() -> Call[GenerateRootStatus]:
    return Call("GET", "/v1/sys/generate-root", _one(GenerateRootStatus.from_json), auth=False)


def generate_root_submit(nonce: str, share: str) -> Call[GenerateRootStatus]:
    return Call("POST", "/v1/sys/generate-root/update", _one(GenerateRootStatus.from_json),
                json={"nonce": nonce, "share": share.strip()}, auth=False)


def generate_root_cancel(nonce: str) -> Call[GenerateRootStatus]:
    return Call("POST", "/v1/sys/generate-root/cancel", _one(GenerateRootStatus.from_json),
                json={"nonce": nonce}, auth=False)
