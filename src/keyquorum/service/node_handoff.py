"""Handing the root key to an enrolled node that starts sealed, through the shared store.

The channel is the database every node already shares, and a database writer
must be able neither to read what crosses it nor to pass for either side:

1. A sealed node with a node key (``node_key_file``) writes a **request**
   ``node/request/<node>``: a fresh nonce and its public key's fingerprint.
2. Any unsealed node answers (``answer_requests``, once a second): it loads the
   node's seal entry (kind ``node``), checks its **enrolment tag** with the root
   key (``seal.node.authentic``: only a custodian ceremony made it), checks the
   fingerprint, and writes a **response** ``node/response/<node>``: the root key
   sealed to the enrolled public key (``kem_box``, bound to the node and the
   nonce) and signed with the cluster's audit signing key together with the
   **seal epoch** the answering node is open under. A node that has not yet
   followed a seal of the cluster (the stored epoch is newer than its own) does
   not answer. The answer, and the audit record naming the node, commit in one
   transaction (fail closed).
3. The starting node checks the signature against the audit key id it pins in
   its own configuration (``node_trust_key``), checks the signed epoch is still
   the stored one (an answer made before a seal of the cluster, held back by a
   database writer or read late, opens nothing), opens the box with its private
   key and unseals; a root key that does not open the stored keyring opens
   nothing (``runtime.node_link``).

A writer who enrols a node of their own has no valid tag, so nobody answers it;
one who forges a response has no audit key, so the node ignores it; what the
response carries opens only with the enrolled node's private key, which never
leaves that node.

Sealing the cluster: ``POST /v1/sys/seal`` also raises the stored **seal
epoch** in the record's transaction; every unsealed node that sees a higher
epoch than the one it unsealed under seals itself. With every node sealed
nobody answers requests, so a restarted node stays sealed until custodians
unseal one node again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass, field

from sqlalchemy import Connection

from keyquorum.audit.keys import SIGNING_ALG, key_id_of
from keyquorum.audit.records import AuditRecord
from keyquorum.crypto import kem_box
from keyquorum.crypto.signing import verify_with_public_pem
from keyquorum.errors import KeyquorumError, Sealed
from keyquorum.seal import node
from keyquorum.seal.entry import NODE, SealEntry
from keyquorum.seal.seal_set import SEAL_SET_PREFIX
from keyquorum.service.context import RequestContext, next_request_id
from keyquorum.service.core import Core
from keyquorum.storage.seal_epoch import SEAL_EPOCH, raise_epoch, read_epoch
from keyquorum.storage.system_repo import (
    delete_entry,
    entries_with_prefix,
    get_entry,
    put_entry,
)

log = logging.getLogger("keyquorum.node")

REQUEST_PREFIX = "node/request/"
RESPONSE_PREFIX = "node/response/"
REQUEST_TTL = 60.0
"""A request older than this is not answered (the node writes a fresh one)."""
_SIGNATURE_DOMAIN = b"keyquorum/node-handoff/v2\x00"  # v2: the epoch is signed
_MAX_ENTRY = 64 * 1024


@dataclass(frozen=True)
class HandoffRequest:
    node: str
    nonce: str
    fingerprint: str
    requested_at: float

    def to_json(self) -> bytes:
        return json.dumps({"nonce": self.nonce, "fingerprint": self.fingerprint,
                           "requested_at": self.requested_at}, sort_keys=True).encode()

    @classmethod
    def from_json(cls, node_id: str, raw: bytes) -> HandoffRequest:
        """``ValueError`` for anything but a well-formed request (it is untrusted data)."""
        if len(raw) > _MAX_ENTRY:
            raise ValueError("request too large")
        data = json.loads(raw)
        nonce, fingerprint = data["nonce"], data["fingerprint"]
        if not (isinstance(nonce, str) and 16 <= len(nonce) <= 64
                and isinstance(fingerprint, str) and len(fingerprint) <= 64):
            raise ValueError("malformed request")
        return cls(node_id, nonce, fingerprint, float(data["requested_at"]))


@dataclass(frozen=True)
class HandoffResponse:
    node: str
    nonce: str
    box: bytes = field(repr=False)
    signer_pem: str
    signature: bytes
    answered_by: str
    answered_at: float
    epoch: int  # the seal epoch the answering node was open under (signed)

    def to_json(self) -> bytes:
        return json.dumps({
            "nonce": self.nonce, "epoch": self.epoch,
            "box": base64.b64encode(self.box).decode(),
            "signer_pem": self.signer_pem,
            "signature": base64.b64encode(self.signature).decode(),
            "answered_by": self.answered_by, "answered_at": self.answered_at,
        }, sort_keys=True).encode()

    @classmethod
    def from_json(cls, node_id: str, raw: bytes) -> HandoffResponse:
        """``ValueError`` for anything but a well-formed response (untrusted until verified)."""
        if len(raw) > _MAX_ENTRY:
            raise ValueError("response too large")
        data = json.loads(raw)
        return cls(node_id, str(data["nonce"]), base64.b64decode(data["box"], validate=True),
                   str(data["signer_pem"]),
                   base64.b64decode(data["signature"], validate=True),
                   str(data["answered_by"])[:128], float(data["answered_at"]),
                   _epoch(data["epoch"]))


def _epoch(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("malformed epoch")
    return value


def box_context(node_id: str, nonce: str) -> bytes:
    """What the sealed root key is bound to: this node and this request."""
    return f"keyquorum/node-handoff/v1|{node_id}|{nonce}".encode()


def signed_message(node_id: str, nonce: str, epoch: int, box: bytes) -> bytes:
    """What the audit key signs: the node, the request's nonce, the seal epoch the answer
    was made under, and the box itself."""
    return (_SIGNATURE_DOMAIN + f"{node_id}|{nonce}|{epoch}|".encode()
            + hashlib.sha256(box).digest())


class NodeResponder:
    """An unsealed node's side: answer the enrolled nodes' requests (module docstring).

    A request is answered once per nonce; one that cannot be answered (no such
    node, a tag that does not verify, a fingerprint that does not match) is
    audited once as an error and then ignored until its nonce changes.
    """

    def __init__(self, core: Core) -> None:
        self.core = core
        self._refused: set[tuple[str, str]] = set()

    def answer_requests(self) -> list[str]:
        """Answer every pending request; the nodes answered."""
        core = self.core
        opened = core.opened_epoch
        if core.sealed or opened is None:
            return []
        now = core.clock.now()
        with core.engine.connect() as conn:
            if read_epoch(conn) != opened:  # the cluster was sealed: the link follows it
                return []
            requests = entries_with_prefix(conn, REQUEST_PREFIX)
            answered = entries_with_prefix(conn, RESPONSE_PREFIX)
        done = []
        for name, raw in requests.items():
            node_id = name[len(REQUEST_PREFIX):]
            try:
                request = HandoffRequest.from_json(node_id, raw)
            except (ValueError, KeyError, TypeError):
                continue
            if now - request.requested_at > REQUEST_TTL or request.requested_at > now + 60:
                continue
            if (node_id, request.nonce) in self._refused:
                continue
            previous = answered.get(RESPONSE_PREFIX + node_id)
            if previous is not None and _nonce_of(previous) == request.nonce:
                continue
            try:
                answered_now = self._answer(request, now, opened)
            except KeyquorumError as exc:  # e.g. audit_unavailable: nothing was written
                log.error("node-link: answering node %s failed (%s); the next pass retries",
                          node_id, exc.code)
                continue
            if answered_now:
                done.append(node_id)
        return done

    def _answer(self, request: HandoffRequest, now: float, epoch: int) -> bool:
        core = self.core
        root_key = core.root_key()
        keys = core.audit_trail.keys_or_none
        with core.engine.connect() as conn:
            raw_entry = get_entry(conn, SEAL_SET_PREFIX + request.node)
        entry = SealEntry.from_json(raw_entry) if raw_entry is not None else None
        reason = _refusal(entry, root_key, request)
        if reason is not None or keys is None:
            self._refuse(request, reason or "audit keys unavailable", now)
            return False
        assert entry is not None
        public_pem = str(entry.params["public_key"])
        box = kem_box.seal_to(public_pem, root_key,
                              context=box_context(request.node, request.nonce))
        response = HandoffResponse(
            request.node, request.nonce, box, keys.public_pem,
            keys.sign(signed_message(request.node, request.nonce, epoch, box)), core.node,
            now, epoch)
        ctx = RequestContext(request_id=next_request_id(), client="node-link")
        with core.changes.audited(ctx, "sys:node-unseal", detail={
                "node": request.node, "fingerprint": request.fingerprint,
                "answered_by": core.node, "seal_epoch": str(epoch)}) as change:
            if read_epoch(change.conn) != epoch:  # sealed since the pass began: no answer
                raise Sealed("the cluster was sealed; not answering")
            put_entry(change.conn, RESPONSE_PREFIX + request.node, response.to_json(), now)
        log.warning("node-link: handed the root key to enrolled node %s", request.node)
        return True

    def _refuse(self, request: HandoffRequest, reason: str, now: float) -> None:
        """One error record per refused request (a forged enrolment shows up at once)."""
        self._refused.add((request.node, request.nonce))
        log.error("node-link: not answering node %s: %s", request.node, reason)
        record = AuditRecord(time=now, request_id=next_request_id(), identity=None,
                             operation="sys:node-unseal", key=None, key_version=None,
                             outcome="denied", error_code="forbidden", client="node-link",
                             detail={"node": request.node[:64], "reason": reason})
        try:
            with self.core.engine.begin() as conn:
                self.core.audit.append_in(conn, [record])
        except Exception as exc:  # the refusal stands; only its record is missing
            log.error("node-link: recording a refusal failed (%s)", type(exc).__name__)


def _refusal(entry: SealEntry | None, root_key: bytes,
             request: HandoffRequest) -> str | None:
    if entry is None or entry.kind != NODE:
        return "no node of that name is enrolled"
    if not node.authentic(entry, root_key):
        return "the node's enrolment does not verify (not made by a custodian ceremony)"
    if entry.params.get("fingerprint") != request.fingerprint:
        return "the request names another key than the one enrolled"
    return None


def _nonce_of(raw: bytes) -> str | None:
    try:
        nonce = json.loads(raw).get("nonce")
    except (ValueError, AttributeError):
        return None
    return nonce if isinstance(nonce, str) else None


def verify_response(response: HandoffResponse, trusted_key_id: str) -> bool:
    """The starting node's check: signed by the pinned audit key, over this box."""
    if not hmac.compare_digest(key_id_of(response.signer_pem).encode(),
                               trusted_key_id.encode()):
        return False
    try:
        return verify_with_public_pem(
            SIGNING_ALG, response.signer_pem, response.signature,
            message=signed_message(response.node, response.nonce, response.epoch,
                                   response.box))
    except ValueError:
        return False


def clear_request(conn: Connection, node_id: str) -> None:
    """Drop the node's request and response once it is open (nothing stays to replay)."""
    delete_entry(conn, REQUEST_PREFIX + node_id)
    delete_entry(conn, RESPONSE_PREFIX + node_id)


__all__ = ["REQUEST_PREFIX", "RESPONSE_PREFIX", "SEAL_EPOCH", "HandoffRequest",
           "HandoffResponse", "NodeResponder", "box_context", "clear_request", "raise_epoch",
           "read_epoch", "signed_message", "verify_response"]
