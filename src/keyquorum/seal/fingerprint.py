"""What a store's seal set is, in one public value an operator can write down and pin.

A backup's header is read before anything in it is authenticated, and the root key
it opens to authenticates the body only against *that* root key: an attacker who
runs their own keyquorum makes backups that authenticate perfectly under their own
root key. So the operator pins what a backup must belong to:

- the **root key id**: ``HKDF-SHA256(root key, info="keyquorum/root-key-id/v1")``,
  16 bytes, public (HKDF is one-way: it reveals nothing of the root key), stored in
  the Shamir entry at init and at every rekey;
- the **seal fingerprint**: ``kqfp1:`` + SHA-256 over the root key id, the split
  (shares, threshold) and the Shamir commitments, in a fixed encoding. It is shown
  by ``operator init``, ``custodian status`` and every backup.

Restore and drill check a pinned fingerprint against the header *before* any seal
is tried (a forged or edited header is refused having touched nothing), and, once
a seal has opened a root key, that the key's id is the one the header names
(constant time), so a wrapped root swapped into an entry the pin covers is refused
too. A rekey makes new commitments and a new root key (``service.root_rotation``),
so the fingerprint and the root key id change with each generation: keep the old
fingerprints to pin older backups.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import struct

from keyquorum.crypto.kdf import hkdf_sha256

ROOT_ID_INFO = b"keyquorum/root-key-id/v1"
ROOT_ID_BYTES = 16
PREFIX = "kqfp1:"
_DOMAIN = b"keyquorum/seal-fingerprint/v1\x00"
_FINGERPRINT = re.compile(r"^kqfp1:[0-9a-f]{64}$")


def root_key_id(root_key: bytes | bytearray) -> str:
    """The public id of a root key (hex); equal ids mean the same root key."""
    return hkdf_sha256(root_key, info=ROOT_ID_INFO, length=ROOT_ID_BYTES).hex()


def root_key_matches(root_key: bytes | bytearray, expected_id: str) -> bool:
    """Whether ``root_key`` is the one ``expected_id`` names (constant-time comparison)."""
    return hmac.compare_digest(root_key_id(root_key).encode(), expected_id.encode())


def seal_fingerprint(root_id: str, shares: int, threshold: int,
                     commitments: tuple[bytes, ...]) -> str:
    """``kqfp1:<sha256 hex>`` over the root key id, the split and the commitments."""
    digest = hashlib.sha256(_DOMAIN)
    digest.update(bytes.fromhex(root_id))
    digest.update(struct.pack(">HHH", shares, threshold, len(commitments)))
    for commitment in commitments:
        digest.update(struct.pack(">H", len(commitment)) + commitment)
    return PREFIX + digest.hexdigest()


def check_fingerprint(value: object) -> str:
    """A well-formed fingerprint (lower-case), or ``ValueError`` stating the form."""
    text = value.strip().lower() if isinstance(value, str) else None
    if text is None or not _FINGERPRINT.match(text):
        raise ValueError("a seal fingerprint is 'kqfp1:' followed by 64 hex digits, as shown "
                         "by `operator init`, `custodian status` and every backup")
    return text
