"""Dual control settings: which guarded actions need how many approvals, for how long.

Dual control (split knowledge) is off until an operator turns it on, in the
config file (``"dual_control": {...}``) or with ``PUT /v1/sys/dual-control``.
When it is on, every *action* in ``operations`` needs ``approvals`` approvals
from identities other than the requester before it runs.

Action names are part of the API (configs and stored settings name them), so
they are one closed set here, like policy operations:

==========================  ==============================================================
action                      guards
==========================  ==============================================================
``schedule-deletion``       ``POST /v1/keys/{name}/schedule-deletion`` (and Vault's and
                            AWS's deletes, which schedule it)
``destroy-versions``        ``POST /v1/keys/{name}/destroy-versions`` and Vault's trim:
                            material erased at once. Also guarded wherever
                            ``schedule-deletion`` is (``guards``), so settings written
                            before it existed still guard it
``revoke``                  ``POST /v1/keys/{name}/revoke``
``export``                  exporting key material (route to come)
``import``                  importing key material (route to come)
``policy-put``              ``PUT /v1/policies/{name}``
``policy-delete``           ``DELETE /v1/policies/{name}``
``audit-sink-remove``       removing an audit sink (issue 5, audit sinks)
``seal-change``             rekey, adding or removing a seal of the seal set (issue 4)
``token-create-privileged`` ``POST /v1/auth/tokens`` when the new token's policies grant
                            any ``sys:*`` operation, ``approve`` or ``*``
==========================  ==============================================================

``dual-control-change`` is not listable: once dual control is on, any change
that weakens it (fewer approvals, an action removed, a longer TTL, or off), and
any change that could lock it (more approvals, a shorter TTL), needs approval
itself. ``approvals`` can never be set above the identities able to approve
(``DualControl.set_settings``), and the config file's ``max_approvals`` caps what
is in force, so an operator can always bring a locked service back by editing
the file (it is the operator's trust root).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from keyquorum.durations import parse_duration
from keyquorum.errors import InvalidRequest

SCHEDULE_DELETION = "schedule-deletion"
DESTROY_VERSIONS = "destroy-versions"
REVOKE = "revoke"
EXPORT = "export"
IMPORT = "import"
POLICY_PUT = "policy-put"
POLICY_DELETE = "policy-delete"
AUDIT_SINK_REMOVE = "audit-sink-remove"
SEAL_CHANGE = "seal-change"
TOKEN_CREATE_PRIVILEGED = "token-create-privileged"  # noqa: S105 - an action name
DUAL_CONTROL_CHANGE = "dual-control-change"

ACTIONS: frozenset[str] = frozenset({
    SCHEDULE_DELETION, DESTROY_VERSIONS, REVOKE, EXPORT, IMPORT, POLICY_PUT, POLICY_DELETE,
    AUDIT_SINK_REMOVE, SEAL_CHANGE, TOKEN_CREATE_PRIVILEGED,
})
"""The actions an operator may put under dual control (all of them by default)."""

DEFAULT_ACTIONS = ACTIONS
DEFAULT_TTL = 24 * 3600.0
MIN_TTL = 60.0
MAX_TTL = 30 * 86400.0
MAX_APPROVALS = 16
_FIELDS = frozenset({"approvals", "operations", "ttl"})
_CONFIG_FIELDS = _FIELDS | {"max_approvals"}


@dataclass(frozen=True, slots=True)
class DualControlSettings:
    """``approvals`` 0 means off; ``ttl`` is how long an approval request stays usable."""

    approvals: int = 0
    operations: frozenset[str] = field(default=DEFAULT_ACTIONS)
    ttl: float = DEFAULT_TTL
    # Config file only: the most approvals ever in force, whatever was stored (a way out
    # of a lockout that needs no approval). Not part of ``to_json``: never approved on.
    max_approvals: int | None = None

    @property
    def on(self) -> bool:
        return self.approvals > 0

    def guards(self, action: str) -> bool:
        """Whether ``action`` needs approval under these settings."""
        if action == DUAL_CONTROL_CHANGE:
            return self.on
        if action == DESTROY_VERSIONS:  # erasing now is at least as grave as scheduling it
            return self.on and bool({DESTROY_VERSIONS, SCHEDULE_DELETION} & self.operations)
        return self.on and action in self.operations

    def weaker_than(self, other: DualControlSettings) -> bool:
        """True if moving from ``other`` to these settings lowers any protection."""
        if not other.on:
            return False
        return (self.approvals < other.approvals or not other.operations <= self.operations
                or self.ttl > other.ttl)

    def tightens(self, other: DualControlSettings) -> bool:
        """True if moving from ``other`` could lock guarded actions (more approvals, a
        shorter TTL) while dual control is on: that needs approval too (review F8)."""
        return other.on and (self.approvals > other.approvals or self.ttl < other.ttl)

    def to_json(self) -> dict[str, Any]:
        return {"approvals": self.approvals, "operations": sorted(self.operations),
                "ttl": self.ttl}


OFF = DualControlSettings()


def parse_settings(raw: object, *, where: str = "dual_control",
                   config: bool = False) -> DualControlSettings:
    """Validate ``{"approvals": M, "operations"?: [...], "ttl"?: duration}`` strictly
    (and, from the config file only, ``"max_approvals"?: K`` with M <= K).

    Unknown fields and action names are errors: a setting that silently guards
    less than its author thinks is a security bug.
    """
    if not isinstance(raw, Mapping):
        raise InvalidRequest(f'{where} must be an object like {{"approvals": 2}}')
    unknown = set(raw) - (_CONFIG_FIELDS if config else _FIELDS)
    if unknown:
        raise InvalidRequest(f"{where}: unknown field(s): {', '.join(sorted(map(str, unknown)))}")
    approvals = raw.get("approvals")
    if not isinstance(approvals, int) or isinstance(approvals, bool) \
            or not 0 <= approvals <= MAX_APPROVALS:
        raise InvalidRequest(f"{where}: approvals must be an integer 0-{MAX_APPROVALS} (0: off)")
    operations = DEFAULT_ACTIONS
    if raw.get("operations") is not None:
        listed = raw["operations"]
        if not isinstance(listed, list) or not listed:
            raise InvalidRequest(f"{where}: operations must be a non-empty list of actions")
        for action in listed:
            if not isinstance(action, str) or action not in ACTIONS:
                raise InvalidRequest(f"{where}: unknown action {action!r}; known: "
                                     + ", ".join(sorted(ACTIONS)))
        operations = frozenset(listed)
    ttl = parse_duration(raw.get("ttl"), field=f"{where}: ttl")
    if ttl is None:
        ttl = DEFAULT_TTL
    if not MIN_TTL <= ttl <= MAX_TTL:
        raise InvalidRequest(f"{where}: ttl must be between 1m and 30d")
    cap = raw.get("max_approvals")
    if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool)
                            or not max(approvals, 1) <= cap <= MAX_APPROVALS):
        raise InvalidRequest(f"{where}: max_approvals must be an integer from approvals "
                             f"(at least 1) to {MAX_APPROVALS}")
    return DualControlSettings(approvals, operations, float(ttl), cap)


def strictest(a: DualControlSettings, b: DualControlSettings) -> DualControlSettings:
    """The settings that protect at least as much as both (the config file is a floor)."""
    if not a.on:
        return b
    if not b.on:
        return a
    return DualControlSettings(max(a.approvals, b.approvals), a.operations | b.operations,
                               min(a.ttl, b.ttl))


@dataclass(frozen=True)
class DualControlStatus:
    """What is in force and where it comes from (``GET /v1/sys/dual-control``).

    ``config_file`` is the file's floor when it turns dual control on; ``stored`` what
    the API stored; ``approvers`` the ceiling on ``approvals`` (identities that may
    approve). ``api.serialize_sys`` writes it as API.md's JSON.
    """

    effective: DualControlSettings
    config_file: DualControlSettings | None
    stored: DualControlSettings | None
    max_approvals: int | None
    approvers: int
    available_operations: tuple[str, ...]
