"""KMS key policies and grants: what maps onto keyquorum, and what says what to use instead.

keyquorum decides access with policies attached to identities (tokens and access
keys: ``keys`` globs and operations, with conditions), not with a document on each
key or with grants. ListKeyPolicies has the same meaning here (every key has the
one policy ``default``, as in AWS); reading or writing a key policy document or a
grant has none, so those answer UnsupportedOperationException naming the
keyquorum way to get the same effect.
"""

from __future__ import annotations

from typing import Any

from keyquorum.kms.call import KmsCall
from keyquorum.kms.errors import unsupported
from keyquorum.kms.ops_keys import on_key
from keyquorum.kms.registry import Handler, operation

_POLICIES = ("keyquorum has no per-key policy documents: access is decided by the "
             "keyquorum policies attached to the access key or token (PUT /v1/policies/{name}, "
             "keyquorum policy put; keys are matched by name glob, e.g. kms/**)")
_GRANTS = ("keyquorum has no grants: give the grantee its own access key with a policy "
           "for the operations and keys (POST /v1/auth/access-keys with that policy); revoke "
           "the access key to end it")


@operation("ListKeyPolicies", "read")
async def list_key_policies(call: KmsCall) -> dict[str, Any]:
    await on_key(call, "read", "read", lambda _ctx, _key: None)
    return {"PolicyNames": ["default"], "Truncated": False}


def _refusal(message: str) -> Handler:
    async def refuse(_call: KmsCall) -> dict[str, Any]:
        raise unsupported(message)

    return refuse


for _action in ("GetKeyPolicy", "PutKeyPolicy"):
    operation(_action, "sys:policies")(_refusal(_POLICIES))
for _action in ("CreateGrant", "ListGrants", "RetireGrant", "RevokeGrant",
                "ListRetirableGrants"):
    operation(_action, "sys:tokens")(_refusal(_GRANTS))
