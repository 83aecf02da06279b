"""Shape the ceremonies' values into the API's JSON (rekey, seal-add, generate-root).

The one place that knows which fields each stage answers: a rekey or seal addition
in progress shows its nonce (its status is how custodians learn it), generate-root
shows it only to the submitter who was given it; a stage that ended says
``complete`` or ``cancelled``; times are RFC 3339.
"""

from __future__ import annotations

from typing import Any

from keyquorum.clock import rfc3339
from keyquorum.service.ceremony_values import (
    CeremonyProgress,
    GenerateRootStatus,
    RekeyStatus,
    SealAddStatus,
)


def _head(status: CeremonyProgress) -> dict[str, Any]:
    """``started`` and the stage's end marker, then the counts every stage answers."""
    answer: dict[str, Any] = {"started": status.stage == "collecting"}
    if status.stage == "complete":
        answer["complete"] = True
    elif status.stage == "cancelled":
        answer["cancelled"] = True
    answer.update({"progress": status.progress, "required": status.required})
    return answer


def _collecting(status: CeremonyProgress) -> dict[str, Any]:
    """The fields rekey and seal-add share while collecting (nonce included)."""
    return {"nonce": status.nonce, "submitted": list(status.submitted),
            "generation": status.generation, "started_by": status.started_by,
            "started_at": rfc3339(status.started_at),
            "expires_at": rfc3339(status.expires_at)}


def seal_add_json(status: SealAddStatus) -> dict[str, Any]:
    """``/v1/sys/seal-add`` and ``POST /v1/sys/seals``."""
    answer = _head(status)
    if status.stage == "collecting":
        answer.update({**_collecting(status), "seal": dict(status.seal or {})})
    elif status.stage == "complete":
        answer["seal"] = dict(status.seal or {})
    else:
        answer["generation"] = status.generation
    return answer


def rekey_json(status: RekeyStatus) -> dict[str, Any]:
    """``/v1/sys/rekey``: the plan while collecting; the new split once complete."""
    answer = _head(status)
    if status.stage == "collecting" and status.plan is not None:
        plan = status.plan
        answer.update({
            **_collecting(status), "kind": plan.kind, "new_shares": plan.shares,
            "new_threshold": plan.threshold, "new_custodians": list(plan.names),
            "recipients": [{"custodian": name, "fingerprint": print_, "source": source}
                           for name, print_, source in plan.recipients],
            "keys_replaced": list(plan.keys_replaced)})
        if plan.replaced is not None:
            answer["replace"] = {"custodian": plan.replaced, "with": plan.replacement}
    elif status.stage == "complete" and status.new_config is not None:
        config = status.new_config
        answer.update({
            "generation": config.generation, "delivery": "encrypted",
            "encrypted_shares": [dict(e) for e in status.encrypted_shares],
            "threshold": config.threshold, "custodians": list(config.names),
            "commitments": [c.hex() for c in config.commitments],
            "root_key_rotated": True, "seal_fingerprint": status.seal_fingerprint})
    else:
        answer["generation"] = status.generation
    return answer


def generate_root_json(status: GenerateRootStatus) -> dict[str, Any]:
    """``/v1/sys/generate-root``: never a share; the nonce only to whoever was given it."""
    answer = _head(status)
    if status.stage == "collecting":
        answer.update({
            "complete": False, "attempt": status.attempt, "submitted": list(status.submitted),
            "opened_by": status.opened_by,
            "public_key_fingerprint": status.public_key_fingerprint,
            "token_ttl": status.token_ttl, "started_at": rfc3339(status.started_at),
            "expires_at": rfc3339(status.expires_at)})
    elif status.stage == "complete":
        answer.update({
            "attempt": status.attempt, "public_key_fingerprint": status.public_key_fingerprint,
            "accessor": status.accessor, "expires_at": rfc3339(status.token_expires_at),
            "encoded_token": status.encoded_token})
    elif status.stage == "cancelled":
        answer["attempt"] = status.attempt
    if status.nonce:
        answer["nonce"] = status.nonce
    return answer
