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

from collections.abc import Mapping
from dataclasses import dataclass, field

from keyquorum.errors import InvalidRequest, Sealed
from keyquorum.seal.shamir import ShamirSealConfig, UnsealProgress

SHAMIR_ENTRY = "seal/shamir"
SEAL_SET_PREFIX = "seal/set/"


@dataclass(frozen=True)
class Unlock:
    """What an operator offers to open the root key offline (restore, drill)."""

    shares: tuple[str, ...] = field(default=(), repr=False)
    passphrase: str | None = field(default=None, repr=False)
    use_auto: bool = True  # try seals that need no person (PKCS#11, cloud KMS)

    def __repr__(self) -> str:
        return (f"Unlock(shares={len(self.shares)}, passphrase={self.passphrase is not None}, "
                f"use_auto={self.use_auto})")


def open_root_key(entries: Mapping[str, bytes], unlock: Unlock) -> bytes:
    """The root key from stored seal entries (``seal/...`` name → stored value).

    Raises ``InvalidRequest`` for a bad share and ``Sealed`` when nothing given opens it.
    """
    raw = entries.get(SHAMIR_ENTRY)
    if raw is None:
        raise Sealed("no Shamir seal among the stored seal entries")
    config = ShamirSealConfig.from_json(raw)
    if unlock.shares:
        progress = UnsealProgress()
        for share in unlock.shares:
            root_key = progress.submit(config, share)
            if root_key is not None:
                return root_key
        raise Sealed(f"{len(unlock.shares)} share(s) given; {config.threshold} are needed")
    if not unlock.shares and unlock.passphrase is None and not unlock.use_auto:
        raise InvalidRequest("give shares, a passphrase, or allow automatic seals")
    raise Sealed("no seal could be opened with what was given")
