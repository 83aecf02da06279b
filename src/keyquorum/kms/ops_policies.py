"""KMS key policies and grants: what maps onto keyquorum, and what says what to use instead.

keyquorum decides access with policies attached to identities (tokens and access
keys: ``keys`` globs and operations, with conditions), not with a document on each
key or with grants. One key policy means exactly that: AWS's *default* key policy
("Enable IAM User Permissions": the account's root may do ``kms:*``), which hands
every decision to the identities' own policies. So every key's ``default`` policy
reads as that document, and setting it (on PutKeyPolicy, or CreateKey's Policy) is
accepted and changes nothing. Any other document, and every grant, has no meaning
here: UnsupportedOperationException naming the keyquorum way to get the effect.
"""

from __future__ import annotations

import json
from typing import Any

from keyquorum.kms.call import KmsCall
from keyquorum.kms.errors import unsupported, validation
from keyquorum.kms.key_policy import default_policy, is_default_policy
from keyquorum.kms.ops_keys import on_key
from keyquorum.kms.registry import Handler, operation

_POLICIES = ("keyquorum has no per-key policy documents beyond AWS's default one (which "
             "delegates to identity policies): access is decided by the keyquorum policies "
             "attached to the access key or token (PUT /v1/policies/{name}, keyquorum "
             "policy put; keys are matched by name glob, e.g. kms/**)")
_GRANTS = ("keyquorum has no grants: give the grantee its own access key with a policy "
           "for the operations and keys (POST /v1/auth/access-keys with that policy); revoke "
           "the access key to end it")


def _policy_name(call: KmsCall) -> None:
    if call.text("PolicyName", "default") != "default":
        raise validation("the only key policy is named default")


@operation("ListKeyPolicies", "read")
async def list_key_policies(call: KmsCall) -> dict[str, Any]:
    await on_key(call, "read", "read", lambda _ctx, _key: None)
    return {"PolicyNames": ["default"], "Truncated": False}


@operation("GetKeyPolicy", "read")
async def get_key_policy(call: KmsCall) -> dict[str, Any]:
    _policy_name(call)
    await on_key(call, "read", "read", lambda _ctx, _key: None)
    return {"Policy": json.dumps(default_policy(call.names.account)), "PolicyName": "default"}


@operation("PutKeyPolicy", "update")
async def put_key_policy(call: KmsCall) -> dict[str, Any]:
    _policy_name(call)
    if not is_default_policy(call.body.get("Policy"), call.names.account):
        raise unsupported(_POLICIES)
    await on_key(call, "update", "update", lambda _ctx, _key: None)
    return {}


def _refusal(message: str) -> Handler:
    async def refuse(_call: KmsCall) -> dict[str, Any]:
        raise unsupported(message)

    return refuse


for _action in ("CreateGrant", "ListGrants", "RetireGrant", "RevokeGrant",
                "ListRetirableGrants"):
    operation(_action, "sys:tokens")(_refusal(_GRANTS))
