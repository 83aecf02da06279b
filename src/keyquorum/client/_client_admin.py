"""``Client``'s administrative calls, as a base class of it: tokens, access keys and
policies; the audit log, backups, dual control approvals and reports.

``_async_client_admin.py`` is generated from this file by ``scripts/gen-async``, as
``_async_client.py`` is from ``_client.py``: edit here, then run it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from types import ModuleType
from typing import IO, TYPE_CHECKING, Any, TypeVar

from ._deferred import Deferred
from ._protocol import Call, Context, Duration

if TYPE_CHECKING:
    from . import _access_keys as access
    from . import _admin_calls as admin
    from . import _approvals as dual
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

    access = Deferred(_access_keys)
    admin = Deferred(_admin_calls)
    dual = Deferred(_approvals)

T = TypeVar("T")


class AdminMethods:
    """Tokens, access keys, policies, the audit log, backups, approvals and reports."""

    def _run(self, call: Call[T]) -> T:
        """Send ``call`` and read its answer (``Client`` does)."""
        raise NotImplementedError

    def _download(self, call: Call[None], out: IO[bytes],
                  progress: Callable[[int], None] | None = None) -> int:
        """Stream the answer to ``call`` into ``out``; the bytes written (``Client`` does)."""
        raise NotImplementedError

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
