"""The seal set: every configured way back to the root key, and opening it offline.

The root key is wrapped separately under each seal; any one seal unwraps it.
Shamir (``seal/shamir``) is always present: it is the recovery path. Further
seals (passphrase, PKCS#11, cloud KMS) are stored as entries under
``SEAL_SET_PREFIX``, one per seal, as public JSON holding that seal's wrapped
copy of the root key and its parameters (never a PIN, passphrase or credential).

``open_root_key`` is the one function that turns stored seal entries plus what
an operator supplies (``Unlock``) into the root key without a running server:
restore and the recovery drill use it on the entries carried in a backup.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from keyquorum.errors import InvalidRequest, Sealed, SealUnavailable, WrongPassphrase
from keyquorum.seal import kinds, passphrase
from keyquorum.seal.entry import PASSPHRASE, SealEntry
from keyquorum.seal.shamir import ShamirSealConfig, UnsealProgress

SEAL_PREFIX = "seal/"  # every way back to the root key is stored under it
SHAMIR_ENTRY = SEAL_PREFIX + "shamir"
SEAL_SET_PREFIX = SEAL_PREFIX + "set/"


@dataclass(frozen=True)
class Unlock:
    """What an operator offers to open the root key offline (restore, drill)."""

    shares: tuple[str, ...] = field(default=(), repr=False)
    passphrase: str | None = field(default=None, repr=False)
    use_auto: bool = True  # try seals that need no person (PKCS#11, cloud KMS)

    def __repr__(self) -> str:
        return (f"Unlock(shares={len(self.shares)}, passphrase={self.passphrase is not None}, "
                f"use_auto={self.use_auto})")


def stored_seals(entries: Mapping[str, bytes]) -> list[SealEntry]:
    """The non-Shamir seals among stored entries, in id order."""
    return [SealEntry.from_json(value) for name, value in sorted(entries.items())
            if name.startswith(SEAL_SET_PREFIX)]


def open_with_passphrase(seals: list[SealEntry], given: str) -> bytes:
    """The root key from the first passphrase seal ``given`` opens, else ``WrongPassphrase``."""
    for entry in seals:
        if entry.kind == PASSPHRASE:
            with contextlib.suppress(WrongPassphrase):
                return passphrase.open_root(entry, given)
    raise WrongPassphrase()


def open_root_key(entries: Mapping[str, bytes], unlock: Unlock) -> bytes:
    """The root key from stored seal entries (``seal/...`` name → stored value).

    Tries what was given in turn: shares (Shamir), then the passphrase (every
    passphrase seal), then, if allowed, every automatic seal (PKCS#11, KMS).
    Raises ``InvalidRequest`` for a bad share, ``WrongPassphrase`` when only a
    passphrase was offered and it opens nothing, and ``Sealed`` (naming what
    failed, never a secret) when nothing given opens it.
    """
    raw = entries.get(SHAMIR_ENTRY)
    if raw is None:
        raise Sealed("no Shamir seal among the stored seal entries")
    if not unlock.shares and unlock.passphrase is None and not unlock.use_auto:
        raise InvalidRequest("give shares, a passphrase, or allow automatic seals")
    config = ShamirSealConfig.from_json(raw)
    seals = stored_seals(entries)
    failures: list[str] = []
    if unlock.shares:
        progress = UnsealProgress()
        for share in unlock.shares:
            root_key = progress.submit(config, share)
            if root_key is not None:
                return root_key
        failures.append(f"{len(unlock.shares)} share(s) given; {config.threshold} are needed")
    if unlock.passphrase is not None:
        try:
            return open_with_passphrase(seals, unlock.passphrase)
        except WrongPassphrase as exc:
            if not unlock.shares and not (unlock.use_auto and any(s.automatic for s in seals)):
                raise
            failures.append(exc.message)
    if unlock.use_auto:
        for entry in seals:
            if entry.automatic:
                try:
                    return kinds.open_automatic(entry)
                except SealUnavailable as exc:
                    failures.append(f"seal {entry.id}: {exc.message}")
    raise Sealed("no seal could be opened with what was given"
                 + (f" ({'; '.join(failures)})" if failures else ""))
