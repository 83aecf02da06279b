"""Signed checkpoints: "record ``seq`` of this chain has link ``chain_hash``", signed.

The chain alone shows that records were changed only to someone who recomputes
it; an attacker with write access to the database could edit a record and
relink everything after it. A checkpoint signed with the audit key (which
never leaves the barrier) pins a link: relinking breaks the signature match, and
a tail cut behind a checkpoint held outside the database (in an export, a file
sink, or an auditor's notes) is visible because the checkpoint names a record
that is gone. The service writes one when the log has grown: at an interval, at
start (when already unsealed), at unseal, at a clean shutdown and on seal.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from keyquorum.audit.chain import lock_head
from keyquorum.audit.keys import SIGNING_ALG, AuditKeys
from keyquorum.crypto.signing import verify_with_public_pem
from keyquorum.storage.audit_repo import checkpoint_rows, insert_checkpoint, last_checkpoint_seq

_DOMAIN = b"keyquorum audit checkpoint v1\n"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    chain_hash: str
    time: float
    key_id: str
    signature: str  # base64

    def message(self) -> bytes:
        """The signed bytes: a domain tag and the fields as a compact JSON array."""
        return _DOMAIN + json.dumps([self.seq, self.chain_hash, self.time, self.key_id],
                                    separators=(",", ":")).encode("ascii")

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "chain_hash": self.chain_hash, "time": self.time,
                "key_id": self.key_id, "signature": self.signature}

    @classmethod
    def from_json(cls, body: object) -> Checkpoint:
        """Parse a checkpoint given by a caller or read from a file; ``ValueError`` if malformed."""
        if not isinstance(body, dict):
            raise ValueError("a checkpoint is an object with seq, chain_hash, time, key_id, "
                             "signature")
        seq, chain_hash, time = body.get("seq"), body.get("chain_hash"), body.get("time")
        key_id, signature = body.get("key_id"), body.get("signature")
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0 \
                or not isinstance(chain_hash, str) or len(chain_hash) != 64 \
                or isinstance(time, bool) or not isinstance(time, int | float) \
                or not isinstance(key_id, str) or not isinstance(signature, str):
            raise ValueError("a checkpoint is an object with seq, chain_hash, time, key_id, "
                             "signature")
        return cls(seq, chain_hash, float(time), key_id, signature)

    @classmethod
    def from_line(cls, item: dict[str, Any]) -> Checkpoint:
        """A checkpoint from an export line (``{"type": "checkpoint", ...}``) or its bare form."""
        if item.get("type", "checkpoint") != "checkpoint":
            raise ValueError("not a checkpoint line")
        return cls.from_json({k: v for k, v in item.items() if k != "type"})

    def signature_valid(self, public_pem: str) -> bool:
        try:
            signature = base64.b64decode(self.signature, validate=True)
        except (binascii.Error, ValueError):
            return False
        return verify_with_public_pem(SIGNING_ALG, public_pem, signature,
                                      message=self.message())


def make_checkpoint(conn: Connection, keys: AuditKeys, now: float, *,
                    only_if_grown: bool = False) -> Checkpoint | None:
    """Sign the current head and store the checkpoint, inside ``conn``'s transaction.

    The head is locked first, so the checkpoint names a link that exists and no
    record can slip in between reading and signing. ``only_if_grown`` skips it
    when nothing was appended since the last checkpoint (the interval job).
    """
    head = lock_head(conn)
    if head.seq == 0:
        return None
    if only_if_grown:
        last = last_checkpoint_seq(conn)
        if last is not None and last >= head.seq:
            return None
    unsigned = Checkpoint(head.seq, head.chain_hash, now, keys.key_id, "")
    signature = base64.b64encode(keys.sign(unsigned.message())).decode("ascii")
    checkpoint = Checkpoint(head.seq, head.chain_hash, now, keys.key_id, signature)
    insert_checkpoint(conn, checkpoint.to_json())
    return checkpoint


def stored_checkpoints(conn: Connection) -> list[Checkpoint]:
    rows = checkpoint_rows(conn)
    return [Checkpoint(int(r.seq), r.chain_hash, r.time, r.key_id, r.signature) for r in rows]
