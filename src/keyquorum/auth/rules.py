"""Policy documents: named rule lists, validated strictly when they are written.

A rule is ``{"keys": glob, "operations": [...], "effect"?: "allow"|"deny",
"conditions"?: {...}}``. Unknown fields and operations are errors rather than
ignored, because a policy that silently means less (or more) than its author
thinks is a security bug. The built-in ``root`` policy allows everything and
cannot be written or deleted (nor can the built-in roles, see ``roles.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keyquorum.auth.conditions import Conditions, parse_conditions
from keyquorum.auth.globs import validate_glob
from keyquorum.auth.identity import ROOT_POLICY_NAME
from keyquorum.auth.operations import ALL_OPERATIONS, OPERATIONS
from keyquorum.errors import Conflict, InvalidRequest

ALLOW = "allow"
DENY = "deny"
MAX_RULES = 256
_NAME = re.compile(r"[a-z0-9._-]{1,64}")
_RULE_FIELDS = frozenset({"keys", "operations", "effect", "conditions"})
_WILDCARDS = frozenset("*?")


def validate_policy_name(name: object) -> str:
    """Return ``name`` if it is a valid policy name (``[a-z0-9._-]{1,64}``), else raise."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in (".", ".."):
        raise InvalidRequest(
            f"bad policy name {name!r}: 1-64 characters of a-z 0-9 . _ - (not '.' or '..')")
    return name


@dataclass(frozen=True, slots=True)
class Rule:
    """One line of a policy: ``effect`` the ``operations`` on keys matching ``keys``,
    when the request meets ``conditions`` (if any)."""

    keys: str
    operations: tuple[str, ...]
    effect: str = ALLOW
    conditions: Conditions | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"keys": self.keys, "operations": list(self.operations),
                               "effect": self.effect}
        if self.conditions is not None:
            out["conditions"] = self.conditions.to_json()
        return out

    @property
    def specificity(self) -> tuple[int, int, int, int]:
        """How narrowly this rule is written; the most specific matching rule explains
        a decision. Compared in order:

        1. a literal key name beats any glob;
        2. more literal characters in the glob (``payments/cards/*`` over ``payments/*``);
        3. an operation named outright beats ``*``;
        4. more kinds of condition (a conditioned rule is narrower than a bare one).

        Remaining ties go to the earlier rule (the token's policy order, then rule order).
        """
        literal = sum(char not in _WILDCARDS for char in self.keys)
        return (int(literal == len(self.keys)), literal,
                int(ALL_OPERATIONS not in self.operations),
                self.conditions.count if self.conditions is not None else 0)


@dataclass(frozen=True, slots=True)
class Policy:
    """A named, validated list of rules. ``builtin`` policies are part of the server."""

    name: str
    rules: tuple[Rule, ...]
    builtin: bool = False
    description: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The body form accepted by ``parse_policy`` (and answered by GET /v1/policies);
        a built-in one also says so, and why it exists."""
        out: dict[str, Any] = {"rules": [rule.to_json() for rule in self.rules]}
        if self.builtin:
            out["builtin"] = True
            if self.description:
                out["description"] = self.description
        return out


ROOT_POLICY = Policy(ROOT_POLICY_NAME, (Rule("**", (ALL_OPERATIONS,), ALLOW),), builtin=True,
                     description="Everything; held by the token made at init.")
"""What ``root`` means, shown to operators; the authorizer short-circuits it anyway."""


def parse_policy(name: str, body: object, *, reserved: frozenset[str] = frozenset()) -> Policy:
    """Validate a policy body strictly and return it; every mistake names the broken rule.

    ``reserved`` are the names of built-in policies besides ``root``: writing one is
    a conflict, like writing ``root``.
    """
    validate_policy_name(name)
    if name == ROOT_POLICY_NAME or name in reserved:
        raise Conflict(f"the {name} policy is built in and cannot be changed")
    if not isinstance(body, Mapping):
        raise InvalidRequest('a policy must be an object like {"rules": [...]}')
    unknown = set(body) - {"rules"}
    if unknown:
        raise InvalidRequest(f"unknown policy field(s): {', '.join(sorted(map(str, unknown)))}")
    raw_rules = body.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise InvalidRequest("a policy needs a non-empty list of rules")
    if len(raw_rules) > MAX_RULES:
        raise InvalidRequest(f"a policy has at most {MAX_RULES} rules")
    return Policy(name, tuple(parse_rule(i, raw) for i, raw in enumerate(raw_rules)))


def parse_rule(index: int, raw: object) -> Rule:
    """One rule of a policy body; messages start with ``rule {index}:``."""
    where = f"rule {index}"
    if not isinstance(raw, Mapping):
        raise InvalidRequest(f"{where}: a rule must be an object with keys and operations")
    unknown = set(raw) - _RULE_FIELDS
    if unknown:
        raise InvalidRequest(f"{where}: unknown field(s): {', '.join(sorted(map(str, unknown)))}")
    if "keys" not in raw:
        raise InvalidRequest(f"{where}: keys (a glob) is required")
    try:
        keys = validate_glob(raw["keys"])
    except InvalidRequest as exc:
        raise InvalidRequest(f"{where}: {exc.message}") from None
    operations = raw.get("operations")
    if not isinstance(operations, list) or not operations:
        raise InvalidRequest(f"{where}: operations must be a non-empty list")
    seen: dict[str, None] = {}
    for operation in operations:
        if not isinstance(operation, str) or (
                operation not in OPERATIONS and operation != ALL_OPERATIONS):
            raise InvalidRequest(f"{where}: unknown operation {operation!r}")
        seen[operation] = None
    effect = raw.get("effect", ALLOW)
    if effect not in (ALLOW, DENY):
        raise InvalidRequest(f"{where}: effect must be 'allow' or 'deny'")
    conditions = None
    if "conditions" in raw:
        conditions = parse_conditions(where, raw["conditions"], tuple(seen))
    return Rule(keys, tuple(seen), effect, conditions)
