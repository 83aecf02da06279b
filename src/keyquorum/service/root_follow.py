"""A rekey on another node rotated the root key: this node follows it, or seals and says why.

A rekey rotates the root key in one transaction (``service.root_rotation``): the
keyring is re-sealed under the new key, every automatic seal re-wraps it, and the
node that ran it (and its ``--workers`` siblings) adopt it. The new key never
travels through the database, so another node hears only that the keyring changed
(the change feed's ``keyring`` event, or its revision check when that notification
is lost) and then:

- its root key still opens the stored keyring: nothing to do (a sibling's news);
- it opens it again within ``GRACE``: the rekey ran here, or in a ``--workers``
  sibling whose new key is on its way over the socketpair (the revision check can
  see the commit before the rekeying process has adopted the key it made);
- an automatic seal (HSM, KMS) this node can reach opens the new wrap and that key
  opens the keyring: it adopts that key (audited ``sys:root-key-reload``);
- otherwise it **seals itself** (audited ``sys:seal``, reason ``root-key-rotated``,
  and an error in its log saying what to do): Shamir shares of the new generation,
  or an enrolled peer's hand-off (``runtime.node_link``), open it again.

Data under the barrier is never at risk in between: the keyring's terms do not
change in a rekey, only what the root key wraps. What must not happen is anything
*made from* a retired root key (a new seal's wrap, a backup, a hand-off to a peer),
and ``Core.root_key`` refuses that on its own as soon as the stored keyring moves.
"""

from __future__ import annotations

import logging
import time
from enum import Enum

from keyquorum.crypto.wipe import wipe
from keyquorum.errors import KeyquorumError, Sealed
from keyquorum.seal.barrier import KEYRING_ENTRY, BarrierError, open_keyring
from keyquorum.service.context import RequestContext, next_request_id
from keyquorum.service.core import Core
from keyquorum.storage.system_repo import get_entry

log = logging.getLogger("keyquorum.cluster")

GRACE = 2.0
"""Seconds a root key that no longer opens the keyring may take to be replaced by this
host's own rekey (its adoption follows the commit) before the node seals itself."""


class Followed(Enum):
    """What ``follow_root_key`` found and did."""

    SEALED_ALREADY = "sealed-already"
    CURRENT = "current"
    RELOADED = "reloaded"
    SEALED = "sealed"


def _opens(root_key: bytes | bytearray, blob: bytes | None) -> bool:
    if blob is None:
        return False
    try:
        open_keyring(root_key, blob).wipe()
    except BarrierError:
        return False
    return True


def follow_root_key(core: Core) -> Followed:
    """Check this node's root key against the stored keyring and act (module docstring)."""
    core.apply_peer_event({"op": "seal-config"})  # the rekey's new shares, for unseal
    deadline = time.monotonic() + GRACE
    while True:
        try:
            mine: bytes | None = core.root_key()  # on PostgreSQL it refuses a retired key
        except Sealed:
            if core.sealed:
                return Followed.SEALED_ALREADY
            mine = None
        with core.engine.connect() as conn:
            blob = get_entry(conn, KEYRING_ENTRY)
        if mine is not None and _opens(mine, blob):
            return Followed.CURRENT
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    ctx = RequestContext(request_id=next_request_id(), client="cluster",
                         detail={"reason": "root-key-rotated"})
    opened = core.seal_set.try_automatic()  # every failed attempt is audited there
    if opened is not None:
        entry, root_key = opened
        buffer = bytearray(root_key)
        try:
            if _opens(buffer, blob):
                with core.changes.audited(ctx, "sys:root-key-reload",
                                          detail={"seal": entry.id}):
                    pass
                core.adopt_root_key(buffer, tell_nodes=False)
                log.warning("the root key was rotated by a rekey on another node; this node "
                            "took the new one from seal %s (%s)", entry.id, entry.kind)
                return Followed.RELOADED
        finally:
            wipe(buffer)
    _seal_for_rotation(core, ctx)
    return Followed.SEALED


def _seal_for_rotation(core: Core, ctx: RequestContext) -> None:
    """Record why, then seal: sealing goes on even if the record cannot be written
    (a node that cannot make anything from its retired key is the safe side)."""
    try:
        with core.changes.audited(ctx, "sys:seal"):
            pass
    except Exception as exc:
        reason = exc.code if isinstance(exc, KeyquorumError) else type(exc).__name__
        log.error("could not audit sealing for a rotated root key (%s); sealing anyway",
                  reason)
    core.seal()
    log.error("the root key was rotated by a rekey on another node and no seal of this "
              "node opens the new one: this node sealed itself. Unseal it with shares of the "
              "new generation (or an enrolled peer hands it the key)")
