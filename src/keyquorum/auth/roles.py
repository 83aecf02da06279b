"""Built-in roles: policies every server has, that nobody can change or delete.

They split the duties of a key management service so that no single token
needs to hold them all (NIST SP 800-57 Part 2 §4; PCI DSS v4.0 3.6.1):

- ``key-admin`` manages keys but never uses their material;
- ``key-user`` uses keys but never changes them;
- ``auditor`` reads the evidence (audit log, reports) and nothing else;
- ``operator`` runs the service (seal, tokens, policies, audit sinks, dual
  control) but neither manages nor uses keys;
- ``approver`` decides dual-controlled requests and nothing else.

No role alone reaches key material (the rule of ``docs/SECURITY.md``): the only
ways to the root key are the seals, and only a quorum of custodians' shares adds
one (``service.seal_change``) or reissues the shares (rekey). So ``operator`` may
propose a seal and download backups, yet a backup opens only through seals the
custodians accepted; ``key-admin`` manages keys but cannot use or export them;
``key-user`` uses keys it is given but cannot change policies or mint tokens.

Each grant below carries the reason it is there; an operation not listed is not
granted. The roles hold allow rules only: a token given two roles holds the
union of both (separation of duties is kept by issuing separate tokens to
separate people, and dual control covers what one person must never do alone).
A deny rule in a role would instead make some combinations grant nothing at all,
silently. Operations no role grants — ``export``, ``import`` and
``unprotect-compromised`` — take material out of, or past, the service's
protection, and need a policy written on purpose.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from keyquorum.auth.rules import ALLOW, Policy, Rule


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    summary: str
    grants: Mapping[str, str]  # operation -> why this role holds it


KEY_ADMIN = Role("key-admin", "Manages keys (create, rotate, disable, schedule deletion); "
                 "never uses their material.", {
    "create": "make new keys (the material is generated inside and never shown)",
    "read": "see a key's metadata, versions and public key, to manage it",
    "list": "find the keys to manage",
    "update": "set owner, labels, rotation period, usage limit, min decrypt version",
    "rotate": "start a new primary version",
    "disable": "stop a key or version from being used, reversibly",
    "enable": "undo a disable",
    "revoke": "retire a key or version for good (e.g. when compromised)",
    "delete": "schedule (and cancel) the destruction of a key",
})

KEY_USER = Role("key-user", "Uses keys for cryptographic operations; never manages them.", {
    "encrypt": "protect data under a key",
    "decrypt": "recover data protected under a key",
    "reencrypt": "move ciphertext to the primary version unseen (to another key or "
                 "context it needs decrypt as well)",
    "datakey": "envelope encryption: a fresh data key and its wrapped copy",
    "sign": "sign messages or digests",
    "verify": "check signatures",
    "mac": "compute and check MACs",
    "decapsulate": "recover a shared secret from a KEM encapsulation",
    "random": "draw bytes from the server's CSPRNG",
    "read": "see which key and version to use, and fetch public keys",
})

AUDITOR = Role("auditor", "Reads the audit log and the compliance reports; nothing else.", {
    "audit:read": "read and verify the audit log",
    "reports:read": "read the inventory and compliance reports",
})

OPERATOR = Role("operator", "Runs the service: seal, tokens, policies, audit sinks, "
                "dual control; neither manages nor uses keys.", {
    "sys:seal": "seal the service in an emergency; propose a seal or a rekey (only a "
                "quorum of custodians' shares completes either)",
    "sys:read": "see seal details, custodians and metrics",
    "sys:tokens": "issue and revoke tokens (only with policies it holds itself)",
    "sys:policies": "write policies and simulate decisions",
    "sys:audit": "manage audit sinks, checkpoints and the audit public key",
    "sys:dual-control": "turn dual control on and set its quorum",
    "sys:backup": "take encrypted backups (they open only through the seal set, which "
                  "only the custodians can extend)",
})

APPROVER = Role("approver", "Approves or rejects dual-controlled requests; nothing else.", {
    "approve": "list pending dual-control requests and approve or reject them",
})

ROLES: tuple[Role, ...] = (KEY_ADMIN, KEY_USER, AUDITOR, OPERATOR, APPROVER)


def role_policy(role: Role) -> Policy:
    """A role as a policy: one allow rule over every key (``**`` also covers the
    operations that name no key, such as ``list``, ``random`` and ``sys:*``)."""
    return Policy(role.name, (Rule("**", tuple(role.grants), ALLOW),), builtin=True,
                  description=role.summary)


BUILTIN_ROLES: Mapping[str, Policy] = {role.name: role_policy(role) for role in ROLES}
"""Every built-in role by name, as the policy the authorizer evaluates."""

BUILTIN_ROLE_NAMES: frozenset[str] = frozenset(BUILTIN_ROLES)
