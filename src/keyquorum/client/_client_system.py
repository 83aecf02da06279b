"""``Client``'s system calls, as a base class of it: initialization, the seal and its
seal set, custodians and their drills, rekey, and break glass (root token generation).

``_async_client_system.py`` is generated from this file by ``scripts/gen-async``, as
``_async_client.py`` is from ``_client.py``: edit here, then run it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from . import _protocol as api
from ._deferred import Deferred
from ._protocol import Call, Duration

if TYPE_CHECKING:
    from . import _custodians as drills
    from . import _generate_root as glass
    from ._custodians import (
        CustodianChallenge,
        CustodianKeyRegistration,
        CustodianStatus,
        DeliveredShare,
        RekeyStatus,
        SealAddStatus,
    )
    from ._generate_root import GenerateRootStatus
    from ._models import Custodian, CustodianProof, Health, InitResult, Seal, SealStatus
else:  # the call groups a cryptographic operation never uses load on first use
    def _custodians() -> ModuleType:
        from . import _custodians as module
        return module

    def _generate_root() -> ModuleType:
        from . import _generate_root as module
        return module

    drills = Deferred(_custodians)
    glass = Deferred(_generate_root)

T = TypeVar("T")


class SystemMethods:
    """Initialize, seal and unseal, the seal set, custodians, rekey and break glass."""

    def _run(self, call: Call[T]) -> T:
        """Send ``call`` and read its answer (``Client`` does)."""
        raise NotImplementedError

    # --- system -------------------------------------------------------------

    def health(self) -> Health:
        """Liveness and seal state; answers even while sealed."""
        return self._run(api.health())

    def init(self, shares: int, threshold: int,
             custodians: Sequence[str] | None = None, *, force: bool = False,
             custodian_keys: Mapping[str, str] | None = None) -> InitResult:
        """Initialize the service once; the answer's shares and root token are shown once.

        ``threshold == shares`` is refused unless ``force``: losing any share locks the data.
        With ``custodian_keys`` (name -> public key PEM, every custodian) the shares come
        back only sealed to their custodians (``encrypted_shares``).
        """
        return self._run(api.init(shares, threshold, custodians, force, custodian_keys))

    def seal_status(self) -> SealStatus:
        return self._run(api.seal_status())

    def unseal(self, share: str) -> SealStatus:
        """Submit one unseal share; the answer shows the progress toward the threshold."""
        return self._run(api.unseal(share))

    def unseal_reset(self, nonce: str | None = None) -> SealStatus:
        """Discard the shares submitted so far; ``nonce`` is the one the share submissions
        answered (``SealStatus.nonce``), without which the server keeps the progress."""
        return self._run(api.unseal_reset(nonce))

    def seal(self) -> SealStatus:
        """Seal the service (needs ``sys:seal``): keys leave memory until unsealed."""
        return self._run(api.seal())

    def unseal_passphrase(self, passphrase: str) -> SealStatus:
        """Unseal with the passphrase of a passphrase seal (every worker opens)."""
        return self._run(api.unseal_passphrase(passphrase))

    def unseal_auto(self) -> SealStatus:
        """Try the PKCS#11 and KMS seals again now (``SealedError`` if none opens)."""
        return self._run(api.unseal_auto())

    def list_seals(self) -> list[Seal]:
        """Every seal of the seal set, Shamir first (needs ``sys:read``)."""
        return self._run(api.list_seals())

    def add_seal(self, kind: str, *, seal_id: str | None = None,
                 approval_id: str | None = None, **params: Any) -> SealAddStatus:
        """Propose a ``passphrase``, ``pkcs11`` or ``awskms`` seal (needs ``sys:seal``).

        ``params`` are the kind's fields: ``passphrase``; ``module``, ``token_label``,
        ``key_label`` and ``pin_env`` or ``pin_file``; ``key_id``, ``region`` and
        ``endpoint_url``. Under dual control, re-send with ``approval_id``. The seal
        joins the seal set once custodians submit a quorum of shares with the
        answer's ``nonce`` (``seal_add_submit``).
        """
        return self._run(drills.add_seal(kind, params, seal_id=seal_id,
                                         approval_id=approval_id))

    def seal_add_status(self) -> SealAddStatus:
        return self._run(drills.seal_add_status())

    def seal_add_submit(self, nonce: str, share: str) -> SealAddStatus:
        """Submit one current share for the proposed seal (no token needed)."""
        return self._run(drills.seal_add_submit(nonce, share))

    def seal_add_cancel(self) -> SealAddStatus:
        return self._run(drills.seal_add_cancel())

    def remove_seal(self, seal_id: str, *, approval_id: str | None = None) -> None:
        """Remove a seal (never Shamir: ``SealRequiredError``)."""
        self._run(api.remove_seal(seal_id, approval_id=approval_id))

    def custodians(self) -> list[Custodian]:
        return self._run(api.custodians())

    def prove_custodian(self, name: str, proof: Mapping[str, Any]) -> CustodianProof:
        """Send a Schnorr proof of share possession (the share itself never leaves)."""
        return self._run(api.prove_custodian(name, proof))

    # --- custodian drills and rekey (keyquorum.client._custodians) -----------------------

    def custodian_status(self) -> CustodianStatus:
        """Each custodian's last drill and the quorum margin (needs ``sys:read``)."""
        return self._run(drills.custodian_status())

    def custodian_challenge(self, name: str) -> CustodianChallenge:
        return self._run(drills.custodian_challenge(name))

    def prove_share(self, name: str, share: str) -> CustodianProof:
        """Drill: prove ``name`` holds ``share``; only a proof is sent, never the share."""
        challenge = self._run(drills.custodian_challenge(name))
        return self._run(api.prove_custodian(name, drills.make_proof(challenge, share)))

    def custodian_share(self, name: str) -> DeliveredShare:
        """``name``'s share sealed to their key, and the fingerprints to check (no token)."""
        return self._run(drills.custodian_share(name))

    def register_custodian_key(self, name: str, share: str,
                               public_key: str) -> CustodianKeyRegistration:
        """Register ``name``'s public key with a proof of their share bound to the key."""
        from keyquorum.seal.custodian_key import fingerprint  # the server's own definition

        challenge = self._run(drills.custodian_challenge(name))
        proof = drills.make_proof(challenge, share, fingerprint(public_key))
        return self._run(drills.register_custodian_key(name, proof, public_key))

    def rekey_init(self, *, shares: int | None = None, threshold: int | None = None,
                   custodians: Sequence[str] | None = None, force: bool = False,
                   replace: tuple[str, str] | None = None, reissue: bool = False,
                   approval_id: str | None = None,
                   custodian_keys: Mapping[str, str] | None = None) -> RekeyStatus:
        """Start a rekey (``sys:seal``; dual control ``seal-change``): one plan of three."""
        return self._run(drills.rekey_init(
            shares=shares, threshold=threshold, custodians=custodians, force=force,
            replace=replace, reissue=reissue, approval_id=approval_id,
            custodian_keys=custodian_keys))

    def rekey_status(self) -> RekeyStatus:
        return self._run(drills.rekey_status())

    def rekey_submit(self, nonce: str, share: str) -> RekeyStatus:
        """Submit one current share; the completing one answers the new shares, once."""
        return self._run(drills.rekey_submit(nonce, share))

    def rekey_cancel(self) -> RekeyStatus:
        return self._run(drills.rekey_cancel())

    # --- break glass (keyquorum.client._generate_root) -----------------------------------

    def generate_root_init(self, public_pem: str, share: str,
                           ttl: Duration | None = None) -> GenerateRootStatus:
        """Open a root token generation: the requester's public key and the first share.

        No token is sent. The answer's ``nonce`` goes to the other custodians."""
        return self._run(glass.generate_root_init(public_pem, share, ttl))

    def generate_root_status(self) -> GenerateRootStatus:
        return self._run(glass.generate_root_status())

    def generate_root_submit(self, nonce: str, share: str) -> GenerateRootStatus:
        """Add a share; the one completing the quorum is answered the new root token sealed
        to the requester's key (``GenerateRootStatus.open_token`` opens it there)."""
        return self._run(glass.generate_root_submit(nonce, share))

    def generate_root_cancel(self, nonce: str) -> GenerateRootStatus:
        return self._run(glass.generate_root_cancel(nonce))
