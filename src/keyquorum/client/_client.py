"""The synchronous keyquorum client, and the source of the asynchronous one.

``_async_client.py`` is generated from this file by ``scripts/gen-async``: edit
here, then run it (``tests/client/test_sdk_twins.py`` fails while it is stale).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from types import ModuleType, TracebackType
from typing import IO, TYPE_CHECKING, Any, TypeVar

import httpx

from . import _protocol as api
from ._client_crypto import CryptoMethods
from ._deferred import Deferred
from ._protocol import Call, Context, Duration
from ._transport import client_options, request_options, transport_error

if TYPE_CHECKING:
    from . import _access_keys as access
    from . import _admin_calls as admin
    from . import _approvals as dual
    from . import _custodians as drills
    from . import _generate_root as glass
    from ._access_keys import AccessKey, AccessKeyInfo
    from ._admin_models import (
        AuditPage,
        AuditRecord,
        AuditVerification,
        Policy,
        PolicyDecision,
        PolicyRule,
        Token,
        TokenInfo,
        TokenRevocation,
    )
    from ._approvals import Approval, ApprovalPage, DualControlSettings
    from ._custodians import (
        CustodianChallenge,
        CustodianKeyRegistration,
        CustodianStatus,
        DeliveredShare,
        RekeyStatus,
        SealAddStatus,
    )
    from ._generate_root import GenerateRootStatus
    from ._models import (
        Custodian,
        CustodianProof,
        DeletionScheduled,
        Health,
        InitResult,
        Key,
        KeyPage,
        PublicKey,
        Seal,
        SealStatus,
    )
else:  # the call groups a cryptographic operation never uses load on first use
    def _access_keys() -> ModuleType:
        from . import _access_keys as module
        return module

    def _admin_calls() -> ModuleType:
        from . import _admin_calls as module
        return module

    def _approvals() -> ModuleType:
        from . import _approvals as module
        return module

    def _custodians() -> ModuleType:
        from . import _custodians as module
        return module

    def _generate_root() -> ModuleType:
        from . import _generate_root as module
        return module

    access = Deferred(_access_keys)
    admin = Deferred(_admin_calls)
    dual = Deferred(_approvals)
    drills = Deferred(_custodians)
    glass = Deferred(_generate_root)

T = TypeVar("T")


class Client(CryptoMethods):
    """A keyquorum client over HTTP.

    ``addr`` defaults to ``$KEYQUORUM_ADDR`` or ``http://127.0.0.1:8200``;
    ``token`` to ``$KEYQUORUM_TOKEN``. ``verify`` is ``True``, ``False`` or the
    path of a CA bundle. Binary values are ``bytes``; ciphertexts are ``str``.
    API errors raise a ``KeyquorumAPIError`` subclass, connection failures
    ``TransportError``. Use as a context manager, or call ``close()``.
    """

    def __init__(self, addr: str | None = None, token: str | None = None, *,
                 timeout: float | None = api.DEFAULT_TIMEOUT, verify: bool | str = True,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.addr = api.resolve_addr(addr)
        self._token = api.resolve_token(token)
        # transport: httpx's own hook, for a proxy or an app served in this process
        # (the tests reach an in-process server this way); None: plain HTTP(S) to addr.
        self._http = httpx.Client(**client_options(self.addr, timeout, verify),
                                  transport=transport)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(addr={self.addr!r})"  # never the token

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _run(self, call: Call[T]) -> T:
        try:
            answer = self._http.request(call.method, call.path,
                                        **request_options(call, self._token))
        except httpx.HTTPError as exc:
            raise transport_error(exc, self.addr) from exc
        return api.finish(call, answer.status_code, answer.headers.get("x-request-id"),
                          answer.content)

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

    # --- keys -----------------------------------------------------------------

    def create_key(self, name: str, spec: str, *, purpose: str | None = None,
                   description: str | None = None, owner: str | None = None,
                   labels: Mapping[str, str] | None = None, exportable: bool | None = None,
                   rotation_period: Duration | None = None, usage_limit: int | None = None,
                   deletion_window_days: int | None = None,
                   crypto_period: Duration | None = None) -> Key:
        """Create a key; ``crypto_period`` overrides the spec's NIST SP 800-57 default."""
        return self._run(api.create_key(
            name, spec, purpose=purpose, description=description, owner=owner, labels=labels,
            exportable=exportable, rotation_period=rotation_period, usage_limit=usage_limit,
            deletion_window_days=deletion_window_days, crypto_period=crypto_period))

    def list_keys(self, *, prefix: str | None = None, state: str | None = None,
                  spec: str | None = None, owner: str | None = None,
                  labels: Mapping[str, str] | None = None, limit: int | None = None,
                  page_token: str | None = None) -> KeyPage:
        """One page of keys; see ``iter_keys`` for all of them."""
        return self._run(api.list_keys(prefix=prefix, state=state, spec=spec, owner=owner,
                                       labels=labels, limit=limit, page_token=page_token))

    def iter_keys(self, *, prefix: str | None = None, state: str | None = None,
                  spec: str | None = None, owner: str | None = None,
                  labels: Mapping[str, str] | None = None,
                  page_size: int | None = None) -> Iterator[Key]:
        """Every key matching the filters, fetching pages as needed."""
        token: str | None = None
        while True:
            page = self.list_keys(prefix=prefix, state=state, spec=spec, owner=owner,
                                  labels=labels, limit=page_size, page_token=token)
            yield from page.keys
            if not page.next_page_token:
                return
            token = page.next_page_token

    def get_key(self, name: str) -> Key:
        return self._run(api.get_key(name))

    def update_key(self, name: str, *, description: str | None = None,
                   owner: str | None = None, labels: Mapping[str, str] | None = None,
                   rotation_period: Duration | None = None, usage_limit: int | None = None,
                   min_decrypt_version: int | None = None,
                   crypto_period: Duration | None = None) -> Key:
        """Change the given metadata fields; fields left ``None`` are unchanged."""
        return self._run(api.update_key(
            name, description=description, owner=owner, labels=labels,
            rotation_period=rotation_period, usage_limit=usage_limit,
            min_decrypt_version=min_decrypt_version, crypto_period=crypto_period))

    def rotate_key(self, name: str) -> Key:
        """Make a new primary version; older versions still decrypt and verify."""
        return self._run(api.rotate_key(name))

    def disable_key(self, name: str, version: int | None = None) -> Key:
        """Disable the whole key, or suspend one version (reversible)."""
        return self._run(api.disable_key(name, version))

    def enable_key(self, name: str, version: int | None = None) -> Key:
        return self._run(api.enable_key(name, version))

    def revoke_key(self, name: str, reason: str, *, version: int | None = None,
                   note: str | None = None, approval_id: str | None = None) -> Key:
        """Revoke a version (default: the primary), e.g. ``reason="compromised"``."""
        return self._run(api.revoke_key(name, reason, version=version, note=note,
                                        approval_id=approval_id))

    def schedule_deletion(self, name: str, days: int | None = None, *,
                          approval_id: str | None = None) -> DeletionScheduled:
        """Schedule the key's destruction in ``days`` (7-30; default its window)."""
        return self._run(api.schedule_deletion(name, days, approval_id=approval_id))

    def cancel_deletion(self, name: str) -> Key:
        return self._run(api.cancel_deletion(name))

    def public_key(self, name: str, version: int | None = None) -> PublicKey:
        return self._run(api.public_key(name, version))

    # --- tokens and policies ----------------------------------------------------

    def create_token(self, policies: Sequence[str], *, ttl: Duration | None = None,
                     name: str | None = None, approval_id: str | None = None,
                     orphan: bool = False) -> Token:
        """A child of this token; ``orphan`` (root only): not revoked with this token."""
        return self._run(admin.create_token(policies, ttl=ttl, name=name,
                                          approval_id=approval_id, orphan=orphan))

    def token_self(self) -> TokenInfo:
        """Who the calling token is: accessor, name, policies, expiry."""
        return self._run(admin.token_self())

    def revoke_token(self, accessor: str, *, dry_run: bool = False) -> TokenRevocation:
        """Revoke a token and what it minted (orphans excepted); ``dry_run``: list only."""
        return self._run(admin.revoke_token(accessor, dry_run=dry_run))

    def create_access_key(self, policies: Sequence[str], *, ttl: Duration | None = None,
                          name: str | None = None,
                          approval_id: str | None = None) -> AccessKey:
        """AWS SigV4 credentials for the KMS API, an identity like a token."""
        return self._run(access.create_access_key(policies, ttl=ttl, name=name,
                                                  approval_id=approval_id))

    def list_access_keys(self) -> list[AccessKeyInfo]:
        return self._run(access.list_access_keys())

    def revoke_access_key(self, accessor: str) -> None:
        self._run(access.revoke_access_key(accessor))

    def put_policy(self, name: str, rules: Sequence[PolicyRule | Mapping[str, Any]], *,
                   approval_id: str | None = None) -> Policy:
        return self._run(admin.put_policy(name, rules, approval_id=approval_id))

    def get_policy(self, name: str) -> Policy:
        return self._run(admin.get_policy(name))

    def list_policies(self) -> list[Policy]:
        return self._run(admin.list_policies())

    def delete_policy(self, name: str, *, approval_id: str | None = None) -> None:
        self._run(admin.delete_policy(name, approval_id=approval_id))

    def simulate_policy(self, operation: str, key: str | None = None, *,
                        token_accessor: str | None = None,
                        policies: Sequence[str] | None = None,
                        context: Context | None = None, spec: str | None = None,
                        client: str | None = None) -> PolicyDecision:
        """May a token (by accessor) or a set of policies do ``operation`` on ``key``,
        and which rule decides? Nothing is done; needs ``sys:policies``."""
        return self._run(admin.simulate_policy(
            operation, key, token_accessor=token_accessor, policies=policies,
            context=context, spec=spec, client=client))

    # --- audit, approvals, reports --------------------------------------------------

    def list_audit(self, *, key: str | None = None, identity: str | None = None,
                   operation: str | None = None, outcome: str | None = None,
                   since: datetime | str | None = None, until: datetime | str | None = None,
                   limit: int | None = None, page_token: str | None = None,
                   context: str | None = None) -> AuditPage:
        """One page of audit records; see ``iter_audit`` for all of them.

        ``context`` is a hash from ``audit_hash``: records whose context has it.
        """
        return self._run(admin.list_audit(
            key=key, identity=identity, operation=operation, outcome=outcome, since=since,
            until=until, limit=limit, page_token=page_token, context=context))

    def iter_audit(self, *, key: str | None = None, identity: str | None = None,
                   operation: str | None = None, outcome: str | None = None,
                   since: datetime | str | None = None, until: datetime | str | None = None,
                   page_size: int | None = None,
                   context: str | None = None) -> Iterator[AuditRecord]:
        token: str | None = None
        while True:
            page = self.list_audit(key=key, identity=identity, operation=operation,
                                   outcome=outcome, since=since, until=until, limit=page_size,
                                   page_token=token, context=context)
            yield from page.records
            if not page.next_page_token:
                return
            token = page.next_page_token

    def verify_audit(self, checkpoints: Sequence[Mapping[str, Any]] = ()
                     ) -> AuditVerification:
        """Check the audit chain, its signed checkpoints, and ``checkpoints`` you kept."""
        return self._run(admin.verify_audit(checkpoints))

    def export_audit(self, out: IO[bytes]) -> int:
        """Stream the audit export (JSON lines) into ``out``; returns the bytes written."""
        return self._download(admin.export_audit(), out)

    def backup(self, out: IO[bytes], *, segment_size: int | None = None,
               progress: Callable[[int], None] | None = None) -> int:
        """Stream an encrypted backup (docs/FORMAT.md section 6) into ``out``; bytes written.

        ``progress(n)`` is called with each chunk's size. A download cut short raises
        ``TransportError``: treat ``out`` as a backup only when this returns.
        """
        return self._download(admin.backup(segment_size), out, progress)

    def _download(self, call: Call[None], out: IO[bytes],
                  progress: Callable[[int], None] | None = None) -> int:
        written = 0
        try:
            with self._http.stream(call.method, call.path,
                                   **request_options(call, self._token)) as answer:
                if answer.status_code != 200:
                    answer.read()
                    api.finish(call, answer.status_code, answer.headers.get("x-request-id"),
                               answer.content)
                for chunk in answer.iter_bytes():
                    out.write(chunk)
                    written += len(chunk)
                    if progress is not None:
                        progress(len(chunk))
        except httpx.HTTPError as exc:
            raise transport_error(exc, self.addr) from exc
        return written

    def audit_public_key(self) -> dict[str, Any]:
        """The audit checkpoint signing key: ``{public_key_pem, key_id, alg}``."""
        return self._run(admin.audit_public_key())

    def audit_hash(self, value: str) -> str:
        """The HMAC a context name or value is stored as (search the audit log by it)."""
        return self._run(admin.audit_hash(value))

    def audit_checkpoint(self) -> dict[str, Any]:
        """Sign the audit chain's head now; keep the answer to check a later export against."""
        return self._run(admin.audit_checkpoint())

    # Dual control: a guarded call raises ApprovalRequiredError (``.approval_id``); once
    # approved, the same call again with ``approval_id=`` runs it, exactly once.

    def list_approvals(self, *, state: str | None = None, limit: int | None = None,
                       page_token: str | None = None) -> ApprovalPage:
        """Approval requests this token may decide or made itself (open ones by default)."""
        return self._run(dual.list_approvals(state=state, limit=limit,
                                             page_token=page_token))

    def get_approval(self, approval_id: str) -> Approval:
        return self._run(dual.get_approval(approval_id))

    def approve(self, approval_id: str, note: str | None = None) -> Approval:
        """Approve someone else's request (needs the ``approve`` operation on its key)."""
        return self._run(dual.decide(approval_id, "approve", note))

    def reject(self, approval_id: str, note: str | None = None) -> Approval:
        """Reject a request: one rejection vetoes it."""
        return self._run(dual.decide(approval_id, "reject", note))

    def dual_control(self) -> DualControlSettings:
        return self._run(dual.dual_control())

    def set_dual_control(self, approvals: int, *, operations: Sequence[str] | None = None,
                         ttl: Duration | None = None,
                         approval_id: str | None = None) -> DualControlSettings:
        """Turn dual control on (``approvals`` > 0) or change it; weakening needs approval."""
        return self._run(dual.set_dual_control(approvals, operations=operations, ttl=ttl,
                                               approval_id=approval_id))

    def inventory_report(self) -> dict[str, Any]:
        """Every key with its use, crypto-period and flags (``reports:read``)."""
        return self._run(admin.report("inventory"))

    def inventory_report_html(self) -> str:
        """The inventory as a self-contained HTML page."""
        return self._run(admin.report_html("inventory"))

    def compliance_report(self) -> dict[str, Any]:
        """PCI DSS 3.6-3.7 and NIST SP 800-57 controls: pass, attention or fail, per control
        and per key (``reports:read``)."""
        return self._run(admin.report("compliance"))

    def compliance_report_html(self) -> str:
        """The compliance report as a self-contained HTML page."""
        return self._run(admin.report_html("compliance"))

    def metrics(self) -> str:
        """``/metrics`` in Prometheus text format (``sys:read``)."""
        return self._run(admin.metrics())
