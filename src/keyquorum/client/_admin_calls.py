"""Tokens, policies, audit, backups, reports and metrics as ``Call``s (no I/O)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ._admin_models import (
    AuditPage,
    AuditVerification,
    Policy,
    PolicyDecision,
    PolicyRule,
    Token,
    TokenInfo,
    TokenRevocation,
    rules_to_json,
)
from ._protocol import (
    Call,
    Context,
    Duration,
    _context,
    _duration,
    _nothing,
    _one,
    _put,
    _segment,
    _time,
)

# --- identity, policy, audit ----------------------------------------------------


def create_token(policies: Sequence[str], *, ttl: Duration | None = None,
                 name: str | None = None, approval_id: str | None = None,
                 orphan: bool = False) -> Call[Token]:
    body = _put({"policies": list(policies)}, ttl=None if ttl is None else _duration(ttl),
                name=name, approval_id=approval_id, orphan=True if orphan else None)
    return Call("POST", "/v1/auth/tokens", _one(Token.from_json), json=body)


def token_self() -> Call[TokenInfo]:
    return Call("GET", "/v1/auth/tokens/self", _one(TokenInfo.from_json))


def revoke_token(accessor: str, *, dry_run: bool = False) -> Call[TokenRevocation]:
    """``dry_run`` reads (``GET``) what a revocation would take along: never a ``DELETE``
    with a flag, which a server older than the flag would carry out."""
    path = f"/v1/auth/tokens/{_segment(accessor, 'accessor')}"
    if dry_run:
        return Call("GET", path, _one(lambda body: TokenRevocation.from_json(
            {**body, "revoked": False, "dry_run": True})))
    return Call("DELETE", path, _one(TokenRevocation.from_json))


def put_policy(name: str, rules: Sequence[PolicyRule | Mapping[str, Any]], *,
               approval_id: str | None = None) -> Call[Policy]:
    def parse(body: Any, _rid: str | None) -> Policy:
        if isinstance(body, Mapping) and "rules" in body:
            return Policy.from_json(body, name)
        return Policy(name, tuple(PolicyRule.from_json(r) for r in rules_to_json(rules)))

    return Call("PUT", f"/v1/policies/{_segment(name, 'policy name')}", parse,
                json=_put({"rules": rules_to_json(rules)}, approval_id=approval_id))


def get_policy(name: str) -> Call[Policy]:
    return Call("GET", f"/v1/policies/{_segment(name, 'policy name')}",
                lambda body, _rid: Policy.from_json(body, name))


def list_policies() -> Call[list[Policy]]:
    return Call("GET", "/v1/policies",
                lambda body, _rid: [Policy.from_json(p) for p in body.get("policies") or ()])


def delete_policy(name: str, *, approval_id: str | None = None) -> Call[None]:
    params = () if approval_id is None else (("approval_id", approval_id),)
    return Call("DELETE", f"/v1/policies/{_segment(name, 'policy name')}", _nothing,
                params=params)


def simulate_policy(operation: str, key: str | None = None, *,
                    token_accessor: str | None = None, policies: Sequence[str] | None = None,
                    context: Context | None = None, spec: str | None = None,
                    client: str | None = None) -> Call[PolicyDecision]:
    if (token_accessor is None) == (policies is None):
        raise ValueError("give exactly one of token_accessor or policies")
    body = _put({"operation": operation}, key=key, token_accessor=token_accessor,
                policies=None if policies is None else list(policies),
                context=_context(context), spec=spec, client=client)
    return Call("POST", "/v1/policies/simulate", _one(PolicyDecision.from_json), json=body)


def list_audit(*, key: str | None = None, identity: str | None = None,
               operation: str | None = None, outcome: str | None = None,
               since: datetime | str | None = None, until: datetime | str | None = None,
               limit: int | None = None, page_token: str | None = None,
               context: str | None = None) -> Call[AuditPage]:
    params = tuple(
        (k, str(v)) for k, v in (
            ("key", key), ("identity", identity), ("operation", operation),
            ("outcome", outcome), ("context", context),
            ("since", None if since is None else _time(since)),
            ("until", None if until is None else _time(until)), ("limit", limit),
            ("page_token", page_token))
        if v is not None
    )
    return Call("GET", "/v1/audit", _one(AuditPage.from_json), params=params)


def verify_audit(checkpoints: Sequence[Mapping[str, Any]] = ()) -> Call[AuditVerification]:
    return Call("POST", "/v1/audit/verify", _one(AuditVerification.from_json),
                json={"checkpoints": [dict(c) for c in checkpoints]} if checkpoints else {})


def audit_public_key() -> Call[dict[str, Any]]:
    return Call("GET", "/v1/audit/public-key", lambda body, _rid: dict(body))


def audit_hash(value: str) -> Call[str]:
    return Call("POST", "/v1/audit/hash", lambda body, _rid: str(body["hash"]),
                json={"value": value})


def audit_checkpoint() -> Call[dict[str, Any]]:
    return Call("POST", "/v1/audit/checkpoint", lambda body, _rid: dict(body), json={})


def export_audit() -> Call[None]:
    """The export's request; the clients stream its body instead of parsing it."""
    return Call("GET", "/v1/audit/export", _nothing)


def backup(segment_size: int | None = None) -> Call[None]:
    """The backup's request (``sys:backup``); the clients stream the file instead of parsing it."""
    if segment_size is not None and (isinstance(segment_size, bool)
                                     or not isinstance(segment_size, int)):
        raise ValueError("segment_size must be an integer")
    params = () if segment_size is None else (("segment_size", str(segment_size)),)
    return Call("GET", "/v1/sys/backup", _nothing, params=params)


REPORTS = ("inventory", "compliance")


def report(kind: str) -> Call[dict[str, Any]]:
    if kind not in REPORTS:
        raise ValueError("report kind must be 'inventory' or 'compliance'")
    return Call("GET", f"/v1/reports/{kind}", lambda body, _rid: dict(body or {}))


def report_html(kind: str) -> Call[str]:
    if kind not in REPORTS:
        raise ValueError("report kind must be 'inventory' or 'compliance'")
    return Call("GET", f"/v1/reports/{kind}", lambda text, _rid: str(text),
                params=(("format", "html"),), text=True)


def metrics() -> Call[str]:
    return Call("GET", "/metrics", lambda text, _rid: str(text), text=True)
