"""What an approver of a policy change sees: every rule of it, and what it changes.

A summary cut at a few KiB let a policy of 120 harmless rules followed by
``{"keys": "**", "operations": ["*"]}`` be approved by people who never saw the
last rule (review F7). So a dual-controlled policy write shows approvers the
whole new rule list and a unified diff against the stored policy, one rule per
line in a canonical JSON form; and a policy too long to show whole is refused
under dual control instead of being shown in part.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from keyquorum.auth.rules import Policy
from keyquorum.errors import InvalidRequest

MAX_SHOWN = 64 * 1024  # bytes of canonical rules an approver is shown whole


def _lines(rules: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(rule, sort_keys=True, separators=(",", ":")) for rule in rules]


def policy_change_summary(stored: Policy | None, new: Policy) -> dict[str, str]:
    """``{policy, change, rules, diff}`` for approvers; ``InvalidRequest`` past ``MAX_SHOWN``."""
    new_lines = _lines(new.to_json()["rules"])
    old_lines = _lines(stored.to_json()["rules"]) if stored is not None else []
    rules = "[\n" + ",\n".join(new_lines) + "\n]"
    diff = "\n".join(difflib.unified_diff(old_lines, new_lines, fromfile="stored",
                                          tofile="requested", lineterm="", n=1))
    if len(rules) + len(diff) > MAX_SHOWN:
        raise InvalidRequest(f"under dual control a policy is at most {MAX_SHOWN // 1024} KiB, "
                             "so its approvers can read all of it and the change; split it "
                             "into several policies")
    return {"policy": new.name, "change": "update" if stored is not None else "create",
            "rules": rules, "diff": diff or "(no change)"}
