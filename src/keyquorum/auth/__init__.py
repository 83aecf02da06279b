"""keyquorum.auth: who is calling (tokens, identities) and what they may do (policies).

The public face is re-exported here; the modules hold one concept each.
"""

from __future__ import annotations

from keyquorum.auth.authorizer import Authorizer, Decision, RuleRef
from keyquorum.auth.conditions import Conditions
from keyquorum.auth.identity import ROOT_POLICY_NAME, Identity
from keyquorum.auth.operations import ALL_OPERATIONS, OPERATIONS
from keyquorum.auth.policy_store import PolicyStore, parse_policy
from keyquorum.auth.roles import BUILTIN_ROLES
from keyquorum.auth.rules import ROOT_POLICY, Policy, Rule, validate_policy_name
from keyquorum.auth.tokens import TokenStore, check_child_token

__all__ = [
    "ALL_OPERATIONS",
    "BUILTIN_ROLES",
    "OPERATIONS",
    "ROOT_POLICY",
    "ROOT_POLICY_NAME",
    "Authorizer",
    "Conditions",
    "Decision",
    "Identity",
    "Policy",
    "PolicyStore",
    "Rule",
    "RuleRef",
    "TokenStore",
    "check_child_token",
    "parse_policy",
    "validate_policy_name",
]
