"""The seal set: every configured way back to the root key, and opening it offline.

The root key is wrapped separately under each seal; any one seal unwraps it.
Shamir (``seal/shamir``) is always present: it is the recovery path. Further
seals (passphrase, PKCS#11, cloud KMS) are stored as entries under
``SEAL_SET_PREFIX``, one per seal, as public JSON holding that seal's wrapped
copy of the root key and its parameters (never a PIN, passphrase or credential).

``open_root_key`` is the one function that turns stored seal entries plus what
an operator supplies (``Unlock``) into the root key without a running server:
restore and the recovery drill use it on the entries carried in a backup, which
are NOT authenticated when it runs. So from a backup's entries it takes only
wrapped root keys and public Shamir commitments, never where to find a seal:
automatic seals (PKCS#11, KMS) are tried only as the operator's local recovery
config describes them (``Unlock.auto_seals``: module, token, key, endpoint), and
the header's entry of the same id and kind gives only its wrapped copy of the root.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from keyquorum.errors import InvalidRequest, Sealed, SealUnavailable, WrongPassphrase
from keyquorum.seal import kinds, passphrase
from keyquorum.seal.entry import PASSPHRASE, SealEntry
from keyquorum.seal.shamir import ShamirSealConfig, UnsealProgress
from keyquorum.seal.trust import SealTrust

SEAL_PREFIX = "seal/"  # every way back to the root key is stored under it
SHAMIR_ENTRY = SEAL_PREFIX + "shamir"
SEAL_SET_PREFIX = SEAL_PREFIX + "set/"


@dataclass(frozen=True)
class Unlock:
    """What an operator offers to open the root key offline (restore, drill)."""

    shares: tuple[str, ...] = field(default=(), repr=False)
    passphrase: str | None = field(default=None, repr=False)
    # Automatic seals exactly as the operator's local config describes them (their
    # ``wrapped_root`` is unused: the stored entry of the same id and kind gives it),
    # and what that config allows them to load and call.
    auto_seals: tuple[SealEntry, ...] = ()
    trust: SealTrust = field(default_factory=SealTrust)

    def __repr__(self) -> str:
        return (f"Unlock(shares={len(self.shares)}, passphrase={self.passphrase is not None}, "
                f"auto_seals={[s.id for s in self.auto_seals]})")


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


def local_seal(local: SealEntry, stored: SealEntry) -> SealEntry:
    """The seal as the operator configured it, with the stored entry's wrapped root only."""
    return SealEntry(local.kind, local.id, dict(local.params), stored.wrapped_root,
                     stored.created_at)


def open_root_key(entries: Mapping[str, bytes], unlock: Unlock) -> bytes:
    """The root key from stored seal entries (``seal/...`` name → stored value).

    Tries what was given in turn: shares (Shamir), then the passphrase (every
    passphrase seal), then each automatic seal of the operator's local config.
    Raises ``InvalidRequest`` for a bad share, ``WrongPassphrase`` when only a
    passphrase was offered and it opens nothing, and ``Sealed`` (naming what
    failed, never a secret) when nothing given opens it.
    """
    raw = entries.get(SHAMIR_ENTRY)
    if raw is None:
        raise Sealed("no Shamir seal among the stored seal entries")
    if not unlock.shares and unlock.passphrase is None and not unlock.auto_seals:
        raise InvalidRequest("give shares, a passphrase, or automatic seals in a local "
                             "recovery config")
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
            if not unlock.shares and not unlock.auto_seals:
                raise
            failures.append(exc.message)
    stored = {entry.id: entry for entry in seals}
    for local in unlock.auto_seals:
        entry = stored.get(local.id)
        if entry is None or entry.kind != local.kind:
            failures.append(f"seal {local.id}: no {local.kind} seal with this id is stored")
            continue
        try:
            return kinds.open_automatic(local_seal(local, entry), unlock.trust)
        except SealUnavailable as exc:
            failures.append(f"seal {local.id}: {exc.message}")
    raise Sealed("no seal could be opened with what was given"
                 + (f" ({'; '.join(failures)})" if failures else ""))
