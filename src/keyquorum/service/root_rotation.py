"""A rekey rotates the root key, so a retired share set opens nothing made after it.

Shares of one secret keep reconstructing it, and a backup's public header carries
the Shamir entry of its day: with the same root key kept across a rekey, any
quorum of *retired* shares plus any old backup header gave the root key, and so
every later backup (review F11). So at a rekey's quorum a fresh root key (OS
CSPRNG) replaces the old one, inside the rekey's one transaction:

- the barrier keyring is re-sealed under the new root key (compare-and-set
  against the stored blob, which must open under the old one): the keyring's
  terms are unchanged, so nothing stored under the barrier is rewritten and the
  service stays up;
- every automatic seal (PKCS#11, cloud KMS) wraps the new root key, by asking its
  HSM or KMS again exactly as it was configured (the server's config file must
  still allow it); if one cannot be reached nothing changes and the rekey can be
  retried, or the seal removed first;
- a passphrase seal cannot follow: its key comes from a passphrase nobody gave
  the server. A rekey is refused while one exists (remove it, rekey, propose it
  again); it is checked when the rekey starts and again at its quorum.

The caller stores the new Shamir entry (wrapping the new root key) in the same
transaction, and installs the new key in this and every sibling worker after
commit (``Core.adopt_root_key``). Old backups keep their old header and old root
key: retired shares still open *them*, never anything newer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection

from keyquorum.crypto.random import random_buffer
from keyquorum.errors import Conflict, Sealed
from keyquorum.seal import kinds
from keyquorum.seal.barrier import KEYRING_ENTRY, open_keyring, seal_keyring
from keyquorum.seal.entry import PASSPHRASE, SealEntry
from keyquorum.seal.seal_set import SEAL_SET_PREFIX
from keyquorum.seal.trust import SealTrust
from keyquorum.storage.system_repo import entries_with_prefix, get_entry, swap_entry

ROOT_KEY_BYTES = 32


@dataclass(frozen=True)
class RotatedRoot:
    """The new root key (never in a repr; a buffer the caller wipes once it is adopted)
    and the automatic seals re-wrapped under it."""

    root_key: bytearray = field(repr=False)
    seals: tuple[str, ...] = ()


def passphrase_seals(conn: Connection) -> list[str]:
    """The ids of the passphrase seals: each one stops a rekey (module docstring)."""
    return [SealEntry.from_json(raw).id
            for raw in entries_with_prefix(conn, SEAL_SET_PREFIX).values()
            if SealEntry.from_json(raw).kind == PASSPHRASE]


def refuse_passphrase_seals(conn: Connection) -> None:
    """``Conflict`` naming every passphrase seal, saying what to do instead."""
    found = passphrase_seals(conn)
    if found:
        raise Conflict(
            "a rekey rotates the root key, and a passphrase seal cannot be re-wrapped without "
            f"its passphrase: remove the passphrase seal(s) {', '.join(found)} "
            "(keyquorum operator seals remove), rekey, then propose them again")


def rotate_root(conn: Connection, old_root: bytes | bytearray, now: float,
                trust: SealTrust) -> RotatedRoot:
    """Re-seal the keyring and re-wrap the automatic seals under a fresh root key, on
    ``conn`` (the rekey's transaction); nothing is committed here."""
    refuse_passphrase_seals(conn)
    new_root = random_buffer(ROOT_KEY_BYTES)
    blob = get_entry(conn, KEYRING_ENTRY)
    if blob is None:
        raise Sealed("the barrier keyring is missing from storage")
    keyring = open_keyring(old_root, blob)  # the stored keyring must be the one in use
    try:
        resealed = seal_keyring(new_root, keyring)
    finally:
        keyring.wipe()  # the barrier in use holds its own copy
    if not swap_entry(conn, KEYRING_ENTRY, blob, resealed, now):
        raise Conflict("the barrier keyring changed during the rekey; nothing was changed")
    rewrapped = []
    for name, raw in entries_with_prefix(conn, SEAL_SET_PREFIX).items():
        entry = SealEntry.from_json(raw)
        # The HSM or KMS is asked as the stored entry describes it, and only if the
        # server's config file still allows that module or endpoint (``trust``).
        # (The HSM and KMS libraries take ``bytes``: that copy cannot be wiped.)
        again = kinds.create(kinds.SealRequest(entry.kind, entry.id, dict(entry.params)),
                             bytes(new_root), entry.created_at, trust)
        if not swap_entry(conn, name, raw, again.to_json(), now):
            raise Conflict(f"seal {entry.id} changed during the rekey; nothing was changed")
        rewrapped.append(entry.id)
    return RotatedRoot(new_root, tuple(rewrapped))
