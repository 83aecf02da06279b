"""Every KMS operation keyquorum answers, by AWS action name (``OPERATIONS``).

Importing the groups registers their handlers; anything else is
UnsupportedOperationException (``kms.front``).
"""

from __future__ import annotations

from keyquorum.kms import (
    ops_aliases,
    ops_asym,
    ops_crypto,
    ops_import,
    ops_keys,
    ops_policies,
)
from keyquorum.kms.registry import OPERATIONS, Handler

GROUPS = (ops_keys, ops_aliases, ops_crypto, ops_asym, ops_import, ops_policies)

__all__ = ["GROUPS", "OPERATIONS", "Handler"]
