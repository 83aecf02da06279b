"""Binding a backup to the seal set the operator pinned, before anything in it is trusted.

A backup opens through the seal set its own header carries, and the body
authenticates under whatever root key that opens: a backup made by an
attacker's keyquorum (their root key, their seals) is internally perfect. What
tells it apart is what the operator wrote down when their store was made: its
seal fingerprint (``seal.fingerprint``), shown by ``operator init``,
``custodian status`` and every backup.

- ``check_header`` runs on the unauthenticated header, before any seal is tried:
  with a pin, the header's Shamir entry (commitments, split, root key id) must
  have a pinned fingerprint, or nothing is tried, loaded or written. Automatic
  seals prove nothing about where a backup came from (whoever may Encrypt under
  the KMS key can wrap their own root key for it), so they need a pin.
- ``check_root_key`` runs once a seal has opened a root key: it must be the
  key the header names (root key id, constant time), so a wrapped root swapped
  into an entry the pin still covers is refused before the body is read.

Shares and a passphrase need no pin to be safe: a share verifies only against
its own store's commitments, and the secret it helps rebuild must unwrap the
header's root key, which nobody without the shares can make.
"""

from __future__ import annotations

from collections.abc import Mapping

from keyquorum.backup.format import BackupHeader, BackupMismatch, InvalidBackup
from keyquorum.seal.fingerprint import root_key_matches
from keyquorum.seal.seal_set import SHAMIR_ENTRY, Unlock
from keyquorum.seal.shamir import ShamirSealConfig


def header_seal(entries: Mapping[str, bytes]) -> ShamirSealConfig:
    """The header's Shamir entry, parsed (``InvalidBackup`` when missing or malformed)."""
    raw = entries.get(SHAMIR_ENTRY)
    if raw is None:
        raise InvalidBackup()
    try:
        return ShamirSealConfig.from_json(raw)
    except (KeyError, ValueError, TypeError):
        raise InvalidBackup() from None


def seal_fingerprint_of(header: BackupHeader) -> str | None:
    """The fingerprint computed from the header's Shamir entry (never the header's claim)."""
    try:
        return header_seal(header.seal_entries()).fingerprint
    except InvalidBackup:
        return None


def check_header(entries: Mapping[str, bytes], unlock: Unlock, expect: tuple[str, ...]
                 ) -> ShamirSealConfig:
    """Refuse a header the pin does not cover, and automatic seals with no pin."""
    seal = header_seal(entries)
    if unlock.auto_seals and not expect:
        raise BackupMismatch("automatic seals need a pinned seal fingerprint (--expect, or "
                             "expect in the recovery config): a seal that opens by itself "
                             "does not show which store a backup came from")
    if not expect:
        return seal
    fingerprint = seal.fingerprint
    if fingerprint is None:
        raise BackupMismatch("this backup names no root key id (it was made before seal "
                             "fingerprints): it cannot be checked against a pin; restore "
                             "it with the custodians' shares and no --expect")
    if fingerprint not in expect:
        raise BackupMismatch(f"this backup belongs to seal set {fingerprint}, not to the "
                             "pinned one: it was made by another keyquorum (or another "
                             "generation of shares), or its header was edited")
    return seal


def check_root_key(seal: ShamirSealConfig, root_key: bytes) -> None:
    """The opened root key must be the one the header names (when it names one)."""
    if seal.root_id and not root_key_matches(root_key, seal.root_id):
        raise BackupMismatch("the root key a seal opened is not the one this backup's "
                             "Shamir seal names: a seal entry was swapped or edited")
