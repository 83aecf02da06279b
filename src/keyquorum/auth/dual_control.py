"""Dual control as a service: the gate guarded routes call, its settings, and decisions.

Routes (and other services: audit-sink removal, seal changes) call one gate::

    with core.dual_control.guard(ctx, action, key, params, approval_id=...) as approved:
        ...the guarded change, its record given ``approved``...

When the action is not under dual control it yields no facts at once. Otherwise
a request without ``approval_id`` opens an approval request and raises
``ApprovalRequired`` (403 ``approval_required`` with ``approval_id``; the error
carries its audit facts, ``audit_detail``, and the pipeline writes them on the
denied record); a request with one consumes it — exactly once, for exactly these
parameters, by the same requester, within its TTL — and runs. ``approved`` is
the facts the guarded change's own record must carry (which approval it used):
a value the caller hands on (``changes.audited(detail=...)``, the lifecycle's
``facts=``), never written into the request context. The root token is no
exception.

``params`` is everything that decides what the request does besides the key
name: for key actions the request body (without ``approval_id``); for others
whatever names the target too (``{"policy": name, "body": body}``). It is stored
and shown to approvers whole (review F7), next to a short ``summary``; a request
too long to read whole is refused (``approvals.MAX_REQUEST_SHOWN``). Action
names are listed in ``keyquorum.auth.dual_settings``.

Settings are read from storage on every guarded request (guarded requests are
rare administrative ones), so a change made through any worker or node holds
everywhere at once, with no cache to go stale.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from keyquorum.audit.in_transaction import write_audit_in
from keyquorum.audit.log import AuditLog
from keyquorum.auth.approvals import APPROVE, REJECT, Approval, ApprovalStore
from keyquorum.auth.authorizer import Authorizer
from keyquorum.auth.dual_settings import (
    ACTIONS,
    AUDIT_SINK_REMOVE,
    DESTROY_VERSIONS,
    DUAL_CONTROL_CHANGE,
    EXPORT,
    IMPORT,
    POLICY_DELETE,
    POLICY_PUT,
    REVOKE,
    SCHEDULE_DELETION,
    TOKEN_CREATE_PRIVILEGED,
    DualControlSettings,
    DualControlStatus,
    parse_settings,
    strictest,
)
from keyquorum.auth.identity import ROOT_POLICY_NAME, Identity
from keyquorum.auth.policy_store import PolicyStore
from keyquorum.clock import Clock
from keyquorum.errors import (
    ApprovalRequired,
    Conflict,
    Forbidden,
    InvalidRequest,
    KeyquorumError,
)
from keyquorum.service.context import RequestContext
from keyquorum.storage import tokens_repo
from keyquorum.storage.system_repo import get_entry, put_entry

SETTINGS_ENTRY = "dual_control/config"
APPROVAL_ID_FIELD = "approval_id"

# The headline fields of each action's parameters, for lists and notifications. The
# complete request is shown beside it (``Approval.request``), so nothing an approver
# needs is only here, and nothing here is ever cut short.
_SUMMARY_FIELDS: dict[str, tuple[str, ...]] = {
    REVOKE: ("reason", "version", "note"),
    SCHEDULE_DELETION: ("days",),
    DESTROY_VERSIONS: ("destroy_versions_below",),
    POLICY_PUT: ("policy",),
    POLICY_DELETE: ("policy",),
    TOKEN_CREATE_PRIVILEGED: ("policies", "ttl", "name"),
    DUAL_CONTROL_CHANGE: ("approvals", "operations", "ttl"),
    AUDIT_SINK_REMOVE: ("sink",),
    EXPORT: ("type",),
    IMPORT: ("type", "action", "material_sha256", "expiration_model", "valid_to"),
}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True,
                                                           separators=(",", ":"))


def summarize(action: str, params: Mapping[str, Any]) -> dict[str, str]:
    """The headline approvers see first: the action's listed fields, whole. The full
    request is always shown beside it."""
    fields = _SUMMARY_FIELDS.get(action)
    if fields is None:
        return {"fields": ", ".join(sorted(str(k) for k in params))}
    summary = {name: _text(params[name]) for name in fields if params.get(name) is not None}
    body = params.get("body")
    if action == POLICY_PUT and isinstance(body, Mapping) and "rules" in body:
        summary["rules"] = _text(body["rules"])
    return summary


def approved_facts(approval: Approval) -> dict[str, str]:
    """What the record of a change run under ``approval`` says about it."""
    return {"approval_id": approval.id, "action": approval.operation,
            "dual_control": "approved"}


def _carrying(exc: KeyquorumError, facts: Mapping[str, str]) -> KeyquorumError:
    """``exc``, carrying ``facts`` under its own audit facts (the pipeline writes them on
    the refusal's record)."""
    exc.audit_detail = {**facts, **(exc.audit_detail or {})}
    return exc


def grants_approval(policies: PolicyStore, names: tuple[str, ...] | list[str]) -> bool:
    """Whether any of these policies has an allow rule naming ``approve`` or ``*``."""
    for name in names:
        policy = policies.find(name)
        if policy is not None and any(
                rule.effect == "allow" and (APPROVE in rule.operations or "*" in rule.operations)
                for rule in policy.rules):
            return True
    return False


def grants_privilege(policies: PolicyStore, names: tuple[str, ...] | list[str]) -> bool:
    """Whether any of these policies allows a ``sys:*`` operation, ``approve`` or ``*``.

    Deliberately coarse (any allow rule naming one, whatever its keys or
    conditions): a token that could administer the service, or approve
    dual-controlled requests, is created only under dual control.
    """
    for name in names:
        policy = policies.find(name)
        if policy is None:
            continue
        for rule in policy.rules:
            if rule.effect != "allow":
                continue
            if any(op == "*" or op == APPROVE or op.startswith("sys:")
                   for op in rule.operations):
                return True
    return False


class DualControl:
    """The gate, the settings (config-file floor plus stored) and approvers' decisions."""

    def __init__(self, engine: Engine, clock: Clock, floor: DualControlSettings,
                 policies: PolicyStore, authorizer: Authorizer, audit: AuditLog) -> None:
        self._engine = engine
        self._audit = audit
        self._clock = clock
        self.floor = floor
        self._policies = policies
        self._authorizer = authorizer
        self.approvals = ApprovalStore(engine, clock)

    # -- settings ---------------------------------------------------------------------------

    def stored(self) -> DualControlSettings | None:
        """The settings last set through the API, if any."""
        with self._engine.connect() as conn:
            raw = get_entry(conn, SETTINGS_ENTRY)
        if raw is None:
            return None
        try:
            return parse_settings(json.loads(raw), where="stored dual_control")
        except (KeyquorumError, ValueError):
            # Fail closed: unreadable stored settings never mean "off"; the floor and the
            # strictest reading apply until an operator writes valid ones.
            return DualControlSettings(approvals=max(self.floor.approvals, 1),
                                       ttl=self.floor.ttl)

    def settings(self) -> DualControlSettings:
        """What is in force now: the stricter of the config file and the stored settings,
        with at most the config file's ``max_approvals`` (its way out of a lockout)."""
        stored = self.stored()
        effective = self.floor if stored is None else strictest(self.floor, stored)
        cap = self.floor.max_approvals
        if cap is not None and effective.approvals > cap:
            effective = replace(effective, approvals=cap)
        return effective

    def describe(self) -> DualControlStatus:
        """``GET /v1/sys/dual-control``: in force, and where it comes from."""
        return DualControlStatus(effective=self.settings(),
                                 config_file=self.floor if self.floor.on else None,
                                 stored=self.stored(), max_approvals=self.floor.max_approvals,
                                 approvers=self.approver_count(),
                                 available_operations=tuple(sorted(ACTIONS)))

    def approver_count(self) -> int:
        """Live identities (unrevoked, unexpired tokens) whose policies may ``approve``.

        Deliberately generous (any allow rule naming ``approve`` or ``*``, whatever
        its keys or conditions, and root): it is the ceiling on ``approvals``.
        """
        with self._engine.connect() as conn:
            rows = tokens_repo.live_tokens(conn, self._clock.now())
        return sum(1 for row in rows if ROOT_POLICY_NAME in row.policies
                   or grants_approval(self._policies, row.policies))

    def set_settings(self, ctx: RequestContext, wanted: DualControlSettings,
                     approval_id: str | None) -> DualControlStatus:
        """Store new settings; weakening the ones in force needs approval itself.

        The config file is a floor: what is in force is the stricter of both
        (more approvals, the union of actions, the shorter TTL). Asking for fewer
        approvals than the file is refused rather than silently ignored; lowering
        the floor means editing the file and restarting the server. What approvers
        approve is ``wanted`` in full (``to_json``: every action and the TTL spelled
        out), so a re-sent request matches its approval however it was written.
        """
        if self.floor.on and wanted.approvals < self.floor.approvals:
            raise InvalidRequest(
                f"the config file requires at least {self.floor.approvals} approval(s); "
                "the API cannot go below it")
        cap = self.floor.max_approvals
        if cap is not None and wanted.approvals > cap:
            raise InvalidRequest(f"the config file allows at most {cap} approval(s) "
                                 "(max_approvals)")
        approvers = self.approver_count()
        if wanted.approvals > approvers:
            # More approvals than there are approvers would lock every guarded action,
            # revoking a compromised key included, with nobody able to undo it.
            raise InvalidRequest(
                f"approvals {wanted.approvals} is more than the {approvers} identities that "
                "can approve (live tokens whose policies grant approve); create approver "
                "tokens first")
        facts = {"approvals": str(wanted.approvals),
                 "operations": ",".join(sorted(wanted.operations)),
                 "ttl": str(int(wanted.ttl))}
        current = self.settings()
        consumed = None
        effective = strictest(self.floor, wanted)
        if effective.weaker_than(current) or effective.tightens(current):
            try:
                consumed = self._gate(ctx, DUAL_CONTROL_CHANGE, None, wanted.to_json(),
                                      approval_id, current)
            except KeyquorumError as refused:  # its record names what was asked for
                _carrying(refused, facts)
                raise
            facts.update(approved_facts(consumed))
        now = self._clock.now()
        try:
            with self._engine.begin() as conn:
                put_entry(conn, SETTINGS_ENTRY, json.dumps(wanted.to_json()).encode(), now)
                # The change and its audit record land together, or neither does.
                write_audit_in(self._audit, conn, ctx, operation="sys:dual-control", key=None,
                               key_version=None, now=now, detail=facts)
        except Exception as exc:
            if consumed is not None:  # rolled back: the approval was not used
                self.approvals.restore(consumed)
            if isinstance(exc, IntegrityError):  # another worker stored settings first
                raise Conflict("dual control settings changed concurrently; retry") from exc
            raise
        return self.describe()

    # -- the gate ----------------------------------------------------------------------------

    def require(self, ctx: RequestContext, action: str, key: str | None,
                params: Mapping[str, Any], *, approval_id: str | None = None,
                summary: Mapping[str, str] | None = None) -> dict[str, str]:
        """The facts for the change's record if ``action`` may run now (none when it is
        not guarded); else raise ``ApprovalRequired`` (or a refusal).

        ``approval_id`` may also be given inside ``params`` (it is never part of
        what is approved). An approval given here is consumed for good, even if
        the caller then fails; ``guard`` gives it back when the work changed nothing.
        """
        consumed = self._consume(ctx, action, key, params, approval_id, summary)
        return approved_facts(consumed) if consumed is not None else {}

    @contextmanager
    def guard(self, ctx: RequestContext, action: str, key: str | None,
              params: Mapping[str, Any], *, approval_id: str | None = None,
              summary: Mapping[str, str] | None = None) -> Iterator[dict[str, str]]:
        """``require``, then run the block with the facts its change's record must carry
        (``approved_facts``; empty when the action is not guarded): a value the block
        hands on. If the block raises a domain error before it wrote anything
        (``ctx.audited`` still False), the approval is usable again.

        The contract for the block: a ``KeyquorumError`` means nothing was changed
        (true of every lifecycle change: one transaction with its audit record).
        """
        consumed = self._consume(ctx, action, key, params, approval_id, summary)
        try:
            yield approved_facts(consumed) if consumed is not None else {}
        except KeyquorumError as refused:
            if consumed is not None:
                _carrying(refused, {"approval_id": consumed.id, "action": action})
                if not ctx.audited:
                    self.approvals.restore(consumed)
            raise

    def _consume(self, ctx: RequestContext, action: str, key: str | None,
                 params: Mapping[str, Any], approval_id: str | None,
                 summary: Mapping[str, str] | None) -> Approval | None:
        settings = self.settings()
        if not settings.guards(action):
            return None
        return self._gate(ctx, action, key, params, approval_id, settings, summary)

    def _gate(self, ctx: RequestContext, action: str, key: str | None,
              params: Mapping[str, Any], approval_id: str | None,
              settings: DualControlSettings,
              summary: Mapping[str, str] | None = None) -> Approval:
        assert ctx.identity is not None
        params = dict(params)
        given = params.pop(APPROVAL_ID_FIELD, None)
        approval_id = approval_id if approval_id is not None else given
        if approval_id is None:
            opened = self.approvals.open(
                action=action, key=key, requester=ctx.identity.accessor, params=params,
                summary=summary if summary is not None else summarize(action, params),
                required=settings.approvals, ttl=settings.ttl)
            asked = ApprovalRequired(
                f"{action} is under dual control: approval request {opened.id} needs "
                f"{settings.approvals} approval(s) from other identities; once approved, "
                "re-send the same request with its approval_id", approval_id=opened.id,
                approvals=0,
                approvals_required=settings.approvals)
            raise _carrying(asked, {"approval_id": opened.id, "dual_control": "requested",
                                    "action": action})
        if not isinstance(approval_id, str) or not 1 <= len(approval_id) <= 64:
            raise InvalidRequest("approval_id must be an approval request id")
        try:
            return self.approvals.consume(approval_id, requester=ctx.identity.accessor,
                                          action=action, key=key, params=params,
                                          required=settings.approvals)
        except KeyquorumError as refused:  # not approved (yet), another request's, used...
            _carrying(refused, {"approval_id": approval_id, "action": action})
            raise

    def token_needs_approval(self, policies: list[str] | tuple[str, ...]) -> bool:
        """Whether creating a token holding ``policies`` is the guarded privileged action."""
        return grants_privilege(self._policies, policies)

    # -- approvers ---------------------------------------------------------------------------

    def may_see(self, identity: Identity, approval: Approval) -> bool:
        """Approvers for the approval's key (``approve``), and its requester, may read it."""
        return identity.accessor == approval.requester or self._authorizer.allowed(
            identity, APPROVE, approval.key)

    def show(self, ctx: RequestContext, approval_id: str) -> Approval:
        """The approval, to its requester and those who may approve it (the route's
        record names the approval id it was asked for)."""
        assert ctx.identity is not None
        approval = self.approvals.get(approval_id)
        if not self.may_see(ctx.identity, approval):
            refused = Forbidden("token may not see this approval request")
            refused.audit_subject = (approval.key, None)
            raise refused
        return approval

    def visible(self, ctx: RequestContext, state: str | None, limit: int,
                page_token: str | None) -> tuple[list[Approval], str | None]:
        """A page of approval requests the caller may approve or made itself."""
        assert ctx.identity is not None
        identity = ctx.identity
        found, next_token = self.approvals.list(state=state, limit=limit, page_token=page_token)
        return [a for a in found if self.may_see(identity, a)], next_token

    def decide(self, ctx: RequestContext, approval_id: str, decision: str,
               note: str | None) -> Approval:
        """Approve or reject, as an identity whose policy grants ``approve`` on the key."""
        assert ctx.identity is not None
        approval = self.approvals.get(approval_id)
        facts = {"approval_id": approval.id, "action": approval.operation,
                 "decision": decision, **({"note": note} if note else {})}
        try:
            return self._decide(ctx, approval, decision, note, facts)
        except KeyquorumError as refused:  # audited against the approval's key
            refused.audit_subject = (approval.key, None)
            _carrying(refused, facts)
            raise

    def _decide(self, ctx: RequestContext, approval: Approval, decision: str,
                note: str | None, facts: Mapping[str, str]) -> Approval:
        assert ctx.identity is not None
        self._authorizer.authorize(ctx.identity, APPROVE, approval.key)

        def record(conn: Connection) -> None:  # in the decision's own transaction
            write_audit_in(self._audit, conn, ctx, operation=decision, key=approval.key,
                           key_version=None, now=self._clock.now(), detail=facts)

        return self.approvals.decide(approval.id, ctx.identity.accessor, decision, note,
                                     record=record)


__all__ = ["APPROVAL_ID_FIELD", "APPROVE", "REJECT", "DualControl", "approved_facts",
           "grants_privilege", "summarize"]
