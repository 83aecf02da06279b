"""A node seal: a keyquorum node enrolled to receive the root key from an unsealed peer.

In a cluster every node opens the same barrier. With automatic seals (HSM, KMS)
each node opens itself; with Shamir alone custodians would have to unseal every
node, one by one, after every restart. Instead an *enrolled* node that starts
sealed asks for the root key through the shared database, and any unsealed node
answers with the root key sealed to the node's own KEM public key
(``crypto.kem_box``: X-Wing, so only the holder of the node's private key file
opens it) and signed by the cluster's audit key, which the node pins.

Enrolment is a seal of kind ``node`` in the seal set, so it goes through the
same custodian ceremony as any new way to the root key (a quorum of Shamir
shares, not a token: review F3), and removing it is removing a seal. The entry
is public (the node's public key and its fingerprint) and carries, instead of a
wrapped root key, an **enrolment tag**: HMAC-SHA256 under a key derived from the
root key, over the seal's kind, id and public key. Only a process holding the
root key can make or check it, so a database writer who inserts a node entry of
their own gets nothing: unsealed nodes refuse to answer a node whose tag does not
verify. A rekey that rotates the root key recomputes the tag with the new key
(``kinds.create`` again, like every automatic seal).

A node entry never opens by itself: a node that starts while every other node is
sealed stays sealed, so sealing the cluster really seals it.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from keyquorum.crypto import kem_box
from keyquorum.crypto.kdf import hkdf_sha256
from keyquorum.errors import InvalidRequest
from keyquorum.seal.entry import NODE, SealEntry, wrap_aad

_TAG_INFO = b"keyquorum/node-enrolment/v1"


def parse_params(rest: dict[str, Any]) -> dict[str, Any]:
    """``{"public_key": PEM}`` of the node's key (``keyquorum operator node-key``)."""
    unknown = sorted(set(rest) - {"public_key"})
    if unknown:
        raise InvalidRequest(f"node: unknown fields {', '.join(unknown)}")
    pem = rest.get("public_key")
    try:
        kem_box.check_public_pem(pem)
    except ValueError as exc:
        raise InvalidRequest(f"node: {exc}") from None
    assert isinstance(pem, str)
    public_pem = pem.strip() + "\n"
    return {"public_key": public_pem, "fingerprint": kem_box.public_fingerprint(public_pem)}


def _tag(root_key: bytes, seal_id: str, public_pem: str) -> bytes:
    key = hkdf_sha256(root_key, info=_TAG_INFO)
    raw = kem_box.check_public_pem(public_pem)
    message = wrap_aad(NODE, seal_id) + b"|" + hashlib.sha256(raw).digest()
    return hmac.new(key, message, hashlib.sha256).digest()


def create(root_key: bytes, seal_id: str, params: dict[str, Any],
           now: float) -> SealEntry:
    """The enrolment entry: public parameters and the tag only the root key makes."""
    return SealEntry(NODE, seal_id, dict(params), _tag(root_key, seal_id, params["public_key"]),
                     now)


def authentic(entry: SealEntry, root_key: bytes) -> bool:
    """Whether ``entry`` was enrolled under ``root_key`` (constant-time comparison).

    The fingerprint shown to people is checked against the key too, so an entry
    whose parameters were edited in the database does not pass.
    """
    if entry.kind != NODE:
        return False
    public_pem = entry.params.get("public_key")
    try:
        expected = _tag(root_key, entry.id, str(public_pem))
        fingerprint = kem_box.public_fingerprint(str(public_pem))
    except ValueError:
        return False
    return hmac.compare_digest(expected, entry.wrapped_root) and hmac.compare_digest(
        fingerprint.encode(), str(entry.params.get("fingerprint", "")).encode())
