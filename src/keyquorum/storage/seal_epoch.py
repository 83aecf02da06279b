"""The cluster's seal epoch: ``POST /v1/sys/seal`` raises it, and every node unsealed
under an older one seals itself (``runtime.node_link``).

A node notes the epoch it is open under when it opens (``Core``), read in the same
connection as the keyring it opens: a seal of the cluster issued at any moment after
that is newer than what the node noted, however soon it comes.
"""

from __future__ import annotations

from sqlalchemy import Connection

from keyquorum.storage.system_repo import get_entry, put_entry

SEAL_EPOCH = "cluster/seal-epoch"


def read_epoch(conn: Connection) -> int:
    raw = get_entry(conn, SEAL_EPOCH)
    try:
        return int(raw.decode()) if raw else 0
    except ValueError:
        return 0


def raise_epoch(conn: Connection, now: float) -> int:
    """``POST /v1/sys/seal``: every node unsealed under an older epoch seals itself."""
    epoch = read_epoch(conn) + 1
    put_entry(conn, SEAL_EPOCH, str(epoch).encode(), now)
    return epoch
