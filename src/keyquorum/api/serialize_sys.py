"""Shape the seal, health and custodian values into the API's JSON (API.md field names).

The services answer ``service.sys_values``; this module is the one place that knows
the wire shape of those answers: which optional fields appear only when set (an
unseal round's ``nonce``, a quorum's ``warning``), which are ``null`` when unknown,
and how times are written (RFC 3339).
"""

from __future__ import annotations

from typing import Any

from keyquorum.auth.dual_settings import DualControlStatus
from keyquorum.clock import rfc3339
from keyquorum.service.sys_values import (
    AuditHealth,
    Custodian,
    CustodianQuorum,
    CustodianStatus,
    DeliveredShare,
    Health,
    SealStatus,
)


def seal_status_json(status: SealStatus) -> dict[str, Any]:
    """``GET /v1/sys/seal-status`` and every unseal/seal answer; ``nonce`` only when set."""
    answer: dict[str, Any] = {
        "initialized": status.initialized,
        "sealed": status.sealed,
        "threshold": status.threshold,
        "shares": status.shares,
        "progress": status.progress,
        "seals": [dict(seal) for seal in status.seals],
        "version": status.version,
    }
    if status.nonce:
        answer["nonce"] = status.nonce
    return answer


def quorum_json(quorum: CustodianQuorum) -> dict[str, Any]:
    """The margin; ``unacknowledged`` is a count when public (health), names otherwise."""
    answer: dict[str, Any] = {
        "threshold": quorum.threshold,
        "drill_window_days": quorum.drill_window_days,
        "verified": quorum.verified,
        "margin": quorum.margin,
        "unacknowledged": (len(quorum.unacknowledged) if quorum.public
                           else list(quorum.unacknowledged)),
    }
    if quorum.warning:
        answer["warning"] = quorum.warning
    return answer


def audit_health_json(audit: AuditHealth) -> dict[str, Any]:
    return {"running": audit.running, "backlog": audit.backlog, "degraded": audit.degraded,
            "sinks": [dict(sink) for sink in audit.sinks]}


def health_json(health: Health) -> dict[str, Any]:
    """``GET /v1/sys/health``: ``hardening`` and ``custodians`` only when known."""
    answer: dict[str, Any] = {}
    if health.hardening is not None:
        answer["hardening"] = dict(health.hardening)
    answer.update({
        "initialized": health.initialized,
        "sealed": health.sealed,
        "version": health.version,
        "node": health.node,
        "worker": health.worker,
        "storage": health.storage,
        "audit": audit_health_json(health.audit),
    })
    if health.custodians is not None:
        answer["custodians"] = quorum_json(health.custodians)
    if health.clock is not None:
        answer["clock"] = {"skew_seconds": health.clock.skew,
                           "uncertainty_seconds": health.clock.uncertainty,
                           "max_skew_seconds": health.clock.bound,
                           "within_bound": health.clock.within_bound}
    return answer


def custodian_json(custodian: Custodian) -> dict[str, Any]:
    return {"index": custodian.index, "name": custodian.name,
            "issued_at": rfc3339(custodian.issued_at),
            "last_verified_at": rfc3339(custodian.last_verified_at),
            "verified_by": custodian.verified_by,
            "acknowledged": custodian.acknowledged,
            "acknowledged_at": rfc3339(custodian.acknowledged_at),
            "delivery": custodian.delivery, "recipient": custodian.recipient,
            "key_fingerprint": custodian.key_fingerprint}


def custodian_status_json(status: CustodianStatus) -> dict[str, Any]:
    """``GET /v1/sys/custodians``: the quorum's fields, then the split and every custodian."""
    return {**quorum_json(status.quorum), "shares": status.shares,
            "generation": status.generation, "commitments": list(status.commitments),
            "custodians": [custodian_json(c) for c in status.custodians],
            "seal_fingerprint": status.seal_fingerprint}


def delivered_share_json(share: DeliveredShare) -> dict[str, Any]:
    """``GET /v1/sys/custodians/{name}/share``: the envelope and what to check it against."""
    return {"custodian": share.custodian, "index": share.index,
            "generation": share.generation, "delivery": share.delivery,
            "recipient": share.recipient, "envelope": share.envelope,
            "key_fingerprint": share.key_fingerprint,
            "acknowledged_at": rfc3339(share.acknowledged_at),
            "commitments": list(share.commitments)}


def dual_control_json(status: DualControlStatus) -> dict[str, Any]:
    """``GET``/``PUT /v1/sys/dual-control``: the settings in force, then their sources."""
    effective = status.effective
    return {**effective.to_json(), "enabled": effective.on,
            "config_file": (status.config_file.to_json() if status.config_file is not None
                            else None),
            "stored": status.stored.to_json() if status.stored is not None else None,
            "max_approvals": status.max_approvals, "approvers": status.approvers,
            "available_operations": list(status.available_operations)}
