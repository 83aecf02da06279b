"""The shares a ceremony has collected, kept in its stored entry under the barrier.

Rekey, seal-add and break glass each keep the shares submitted so far (any worker or
node takes the next one) as one barrier blob, bound by associated data to the
ceremony's path and, inside, to the ceremony itself (its nonce or attempt id), so a
blob copied from another ceremony is refused instead of counted.
"""

from __future__ import annotations

import base64
import json

from keyquorum.crypto import vss
from keyquorum.errors import Conflict
from keyquorum.seal.barrier import Barrier


def seal_shares(barrier: Barrier, path: str, bound: tuple[str, str],
                shares: dict[int, vss.Share]) -> str:
    """The blob of ``shares`` for a ceremony ``bound`` = (field, value), e.g. ("nonce", n)."""
    field, value = bound
    plain = json.dumps({field: value,
                        "shares": {str(i): s.value.hex() for i, s in shares.items()}})
    return base64.b64encode(barrier.encrypt(path, plain.encode())).decode()


def open_shares(barrier: Barrier, path: str, blob: str | None, bound: tuple[str, str],
                inconsistent: str) -> dict[int, vss.Share]:
    """The shares in ``blob``; ``Conflict(inconsistent)`` if it belongs to another ceremony."""
    if blob is None:
        return {}
    field, value = bound
    stored = json.loads(barrier.decrypt(path, base64.b64decode(blob)))
    if stored[field] != value:
        raise Conflict(inconsistent)
    return {int(i): vss.Share(int(i), bytes.fromhex(v)) for i, v in stored["shares"].items()}
