"""Dispatch by seal kind: check a new seal's request, create it, open it without a person.

The request body of ``POST /v1/sys/seals`` is ``{"type", "id"?, ...kind fields}``;
which fields each kind takes is its request model's rule (``api.bodies_sys``), and
their values are checked here before anything is contacted or stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from keyquorum.errors import InvalidRequest, SealUnavailable
from keyquorum.seal import cloudkms, hsm, node, passphrase
from keyquorum.seal.entry import (
    AWSKMS,
    KINDS,
    NODE,
    PASSPHRASE,
    PKCS11,
    SealEntry,
    check_seal_id,
)
from keyquorum.seal.trust import NotConfigured, SealTrust


@dataclass(frozen=True)
class SealRequest:
    """A checked request for a new seal. ``params`` are public; the passphrase is not."""

    kind: str
    id: str
    params: dict[str, Any]
    secret: str | None = field(default=None, repr=False)

    def public(self) -> dict[str, Any]:
        """What approvers and the audit log may see (never the passphrase)."""
        return {"type": self.kind, "id": self.id, **self.params}


def parse_request(body: dict[str, Any]) -> SealRequest:
    kind = body.get("type")
    if kind == "shamir":
        raise InvalidRequest("the Shamir seal is made at init and changed by rekey")
    if kind not in KINDS:
        raise InvalidRequest(f"type must be one of: {', '.join(KINDS)}")
    rest = {k: v for k, v in body.items() if k not in ("type", "id")}
    # The default id is the kind: deterministic, so a request re-sent with its dual
    # control approval names the same seal; a second seal of a kind needs its own id.
    seal_id = check_seal_id(body["id"]) if "id" in body else str(kind)
    if kind == PASSPHRASE:
        secret = rest.get("passphrase")
        passphrase.check_passphrase(secret)
        return SealRequest(kind, seal_id, {}, secret=secret)
    if kind == PKCS11:
        return SealRequest(kind, seal_id, hsm.parse_params(rest))
    if kind == NODE:
        return SealRequest(kind, seal_id, node.parse_params(rest))
    return SealRequest(kind, seal_id, cloudkms.parse_params(rest))


def create(request: SealRequest, root_key: bytes, now: float, trust: SealTrust) -> SealEntry:
    """Wrap ``root_key`` under the requested seal (contacts the HSM or KMS).

    ``trust`` refuses (``NotConfigured``, an ``InvalidRequest``) a module, endpoint or
    PIN source the server's config file does not list, before anything is loaded.
    """
    trust.check_params(request.kind, request.params)
    if request.kind == PASSPHRASE:
        return passphrase.create(root_key, request.id, request.secret, now)
    if request.kind == PKCS11:
        return hsm.create(root_key, request.id, request.params, now)
    if request.kind == NODE:  # an enrolment tag, not a wrap: the node never opens alone
        return node.create(root_key, request.id, request.params, now)
    return cloudkms.create(root_key, request.id, request.params, now)


def open_automatic(entry: SealEntry, trust: SealTrust) -> bytes:
    """The root key from a seal that needs no person (PKCS#11, cloud KMS).

    ``trust`` is checked first, every time: a stored entry (or one restored from a
    backup) is data, and only the operator's configuration may name a module to
    load or an endpoint to call. A seal it does not list is ``SealUnavailable``
    (reason ``not_configured``) and nothing is loaded or contacted.
    """
    try:
        trust.check_params(entry.kind, entry.params)
    except NotConfigured as exc:
        raise SealUnavailable(exc.message, reason="not_configured") from None
    if entry.kind == PKCS11:
        return hsm.open_root(entry)
    if entry.kind == AWSKMS:
        return cloudkms.open_root(entry)
    raise ValueError(f"a {entry.kind} seal does not open by itself")
