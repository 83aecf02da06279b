"""The operations a policy rule can name.

One closed set, so a typo in a policy ("encrpyt") is rejected when the policy is
written instead of silently granting nothing at request time.
"""

from __future__ import annotations

OPERATIONS: frozenset[str] = frozenset({
    # key lifecycle
    "create", "read", "list", "update", "rotate", "disable", "enable", "revoke", "delete",
    # cryptographic use
    "encrypt", "decrypt", "reencrypt", "datakey", "sign", "verify", "mac", "decapsulate",
    "export", "import", "random",
    # the audited override that unprotects with a compromised version
    "unprotect-compromised",
    # accountability: approving dual-controlled requests, reading reports
    "approve", "reports:read",
    # administration
    "audit:read", "sys:seal", "sys:read", "sys:tokens", "sys:policies", "sys:audit",
    "sys:dual-control", "sys:backup",
})
"""Every operation named in API.md, plus ``random``, ``sys:read`` (seal details, custodians,
metrics), ``unprotect-compromised`` (needed, besides decrypt, to use
``unsafe_allow_compromised``), ``approve`` (decide dual-controlled requests),
``reports:read`` (inventory and compliance), ``sys:audit`` (audit sinks, checkpoints,
the audit public key), ``sys:dual-control`` (turning dual control on or off) and
``sys:backup`` (download the encrypted backup, ``GET /v1/sys/backup``)."""

ALL_OPERATIONS = "*"
"""Accepted in a rule's ``operations`` to mean every operation, including future ones."""
