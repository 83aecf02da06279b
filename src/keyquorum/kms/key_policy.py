"""AWS's default key policy: the one key policy document that means something here.

"Enable IAM User Permissions" (the account's root may do ``kms:*``) hands every
decision to the caller's own (identity) policies, which is how keyquorum always
decides. ``kms.ops_policies`` reads and accepts it; CreateKey accepts it as Policy.
"""

from __future__ import annotations

import json
from typing import Any


def default_policy(account: str) -> dict[str, Any]:
    """AWS's default key policy for ``account``: the identities' own policies decide."""
    return {"Version": "2012-10-17", "Id": "key-default-1", "Statement": [{
        "Sid": "Enable IAM User Permissions", "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": "kms:*", "Resource": "*"}]}


def is_default_policy(text: object, account: str) -> bool:
    """Whether ``text`` says what the default key policy says (Sid, Id, spacing and
    one-element lists aside)."""
    try:
        document = json.loads(str(text))
        (statement,) = document["Statement"]
    except (ValueError, TypeError, KeyError):
        return False
    if not isinstance(statement, dict):
        return False

    def one(value: Any) -> Any:
        return value[0] if isinstance(value, list) and len(value) == 1 else value

    principal = statement.get("Principal")
    principal = one(principal.get("AWS")) if isinstance(principal, dict) else principal
    return (statement.get("Effect") == "Allow" and "Condition" not in statement
            and "NotAction" not in statement and "NotPrincipal" not in statement
            and one(statement.get("Action")) in ("kms:*", "*")
            and one(statement.get("Resource")) == "*"
            and principal in (f"arn:aws:iam::{account}:root", account))
