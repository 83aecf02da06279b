"""The shares a ceremony has collected, kept in its stored entry under the barrier.

Rekey, seal-add and break glass each keep the shares submitted so far (any worker or
node takes the next one) as one barrier blob, so a database reader learns nothing.
A database *writer* can still rewrite everything the entry holds in the clear: the
keys a rekey seals the new shares to, the seal a seal-add adds (or its wrapped
entry, moved from an earlier proposal), the public key a break-glass token is
sealed to. So the blob is bound to the ceremony's **public facts**: a digest of
every field the entry keeps in the clear (``facts_digest``, made when the ceremony
opens), sealed inside the blob. A ceremony always carries a blob from its start
(empty until the first share), and each step checks that the digest inside still
matches the facts beside it and that the listed share indexes are the blob's: the
shares count only for the ceremony the custodians were shown, and a blob copied
from another ceremony, or dropped, is refused instead of counted.

What it cannot catch: a writer putting back a whole earlier entry of the same
ceremony kind (facts and blob together, e.g. a cancelled one) while it has not
expired; its facts are then the ones its custodians were shown, and the expiry
(checked with the server's clock) bounds the window.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from keyquorum.crypto import vss
from keyquorum.errors import Conflict
from keyquorum.seal.barrier import Barrier, BarrierError

_BOUND = "ceremony"


def facts_digest(facts: Mapping[str, Any]) -> str:
    """SHA-256 over a canonical JSON of a ceremony's public facts (what it shows in the
    clear, with neither the blob nor the submitted indexes)."""
    canonical = json.dumps(facts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(b"keyquorum ceremony facts v1\x00" + canonical.encode()).hexdigest()


def seal_shares(barrier: Barrier, path: str, digest: str,
                shares: dict[int, vss.Share]) -> str:
    """The blob of ``shares`` (may be empty) for the ceremony whose facts give ``digest``."""
    plain = json.dumps({_BOUND: digest,
                        "shares": {str(i): s.value.hex() for i, s in shares.items()}})
    return base64.b64encode(barrier.encrypt(path, plain.encode())).decode()


def open_shares(barrier: Barrier, path: str, blob: object, digest: str,
                indexes: tuple[int, ...], inconsistent: str) -> dict[int, vss.Share]:
    """The shares in ``blob``; ``Conflict(inconsistent)`` if there is none, if it belongs
    to a ceremony with other facts, or if it holds other shares than ``indexes`` says."""
    if not isinstance(blob, str):
        raise Conflict(inconsistent)
    try:
        stored = json.loads(barrier.decrypt(path, base64.b64decode(blob, validate=True)))
        shares = {int(i): vss.Share(int(i), bytes.fromhex(v))
                  for i, v in stored["shares"].items()}
        bound = stored[_BOUND]
    except (BarrierError, ValueError, KeyError, TypeError, AttributeError):
        # not a blob of this path (the barrier refuses it), or a malformed one
        raise Conflict(inconsistent) from None
    if not isinstance(bound, str) or bound != digest or tuple(sorted(shares)) != indexes:
        raise Conflict(inconsistent)
    return shares
