"""Typed bodies of the administrative routes: tokens, policies, simulation, approvals, audit.

Like ``bodies_keys``, each body is a strict model, refused with ``invalid_request``
(unknown field, wrong type, value out of range) before anything is authorized.
A rule is written once:

- a field is checked by the domain's own function where one exists
  (``validate_policies``, ``parse_duration``, ``validate_token_name``), through
  ``domain_rule``, so the model and the store cannot disagree;
- a grammar that the config file or stored data also go through keeps its
  parser — policy rules (``auth.rules.parse_policy``), audit sinks
  (``audit.sinks.parse_sink_config``), checkpoints (``Checkpoint.from_json``):
  the model declares the fields and their JSON types, the parser the values.

A cross-field check calls the domain's function in a model validator: its
``InvalidRequest`` is not a ``ValueError``, so pydantic lets it through as it
is, with the domain's own message.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from keyquorum.api.bodies import Body, Context, Integer, KeyName
from keyquorum.api.bodies_keys import APPROVAL_ID, SpecName
from keyquorum.audit.checkpoints import Checkpoint
from keyquorum.audit.sinks import (
    BEST_EFFORT,
    FACILITIES,
    REQUIRED,
    SINK_KINDS,
    SinkConfig,
    parse_sink_config,
)
from keyquorum.auth.approvals import MAX_NOTE
from keyquorum.auth.conditions import CONDITION_FIELDS, CONTEXT_OPERATIONS, SPEC_OPERATIONS
from keyquorum.auth.operations import ALL_OPERATIONS, OPERATIONS
from keyquorum.auth.rules import ALLOW, DENY, MAX_RULES
from keyquorum.auth.tokens import (
    MAX_POLICIES,
    MAX_TOKEN_NAME,
    validate_policies,
    validate_token_name,
)
from keyquorum.durations import MAX_DURATION, parse_duration
from keyquorum.errors import InvalidRequest

ApprovalId = APPROVAL_ID
MAX_TRUSTED_CHECKPOINTS = 100
MAX_HASH_INPUT = 4096
KEY_OPERATIONS = frozenset({
    "create", "read", "list", "update", "rotate", "disable", "enable", "revoke", "delete",
    "encrypt", "decrypt", "reencrypt", "datakey", "sign", "verify", "mac", "decapsulate",
    "export", "import", "unprotect-compromised",
})
"""Operations the server always authorizes against a named key (``list`` per key listed)."""


def domain_rule(check: Callable[[Any], Any], field: str) -> BeforeValidator:
    """A field checked by the domain's own function; its refusal becomes the field's error
    (the message without the field's name in front, which ``describe`` puts back)."""
    def run(value: Any) -> Any:
        try:
            return check(value)
        except InvalidRequest as exc:
            raise ValueError(exc.message.removeprefix(f"{field} ")) from None
    return BeforeValidator(run)


def shown(value: object) -> str:
    """A short value repeated in a refusal (a long one is not echoed back)."""
    text = repr(value)
    return text if len(text) <= 66 else "the value given"


def duration_schema(low: float, high: float, strings: str) -> dict[str, Any]:
    """A duration as documented: seconds from ``low`` to ``high``, or a string of one unit
    within them (``strings``; the server also takes ``1h30m`` and the like), or null."""
    return {"anyOf": [{"type": "number", "exclusiveMinimum": 0, "minimum": low,
                       "maximum": high},
                      {"type": "string", "pattern": f"^({strings})$"}, {"type": "null"}],
            "description": "seconds, or a string like 90d, 12h or 30m"}


PolicyNames = Annotated[
    tuple[str, ...], domain_rule(validate_policies, "policies"),
    WithJsonSchema({"type": "array", "minItems": 1, "maxItems": MAX_POLICIES,
                    "items": {"type": "string", "pattern": r"^[a-z0-9._-]{1,64}$"}})]
TokenTtl = Annotated[
    float | None, domain_rule(lambda value: parse_duration(value, field="ttl"), "ttl"),
    WithJsonSchema(duration_schema(0, MAX_DURATION, "[1-9][0-9]{0,3}[dhms]"))]
TokenName = Annotated[
    str, domain_rule(validate_token_name, "name"),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": MAX_TOKEN_NAME})]


# -- tokens and policies ---------------------------------------------------------------------


class CreateToken(Body):
    """``POST /v1/auth/tokens``: a child of the caller's token (its policies, at most its life).

    ``orphan`` (root callers only) makes a token the caller's revocation does not reach,
    so init's root token can be revoked once the operators hold orphans of their own."""

    policies: PolicyNames
    ttl: TokenTtl = None
    name: TokenName | None = None
    orphan: bool = Field(default=False, description=(
        "root callers only: the new token is not revoked with the caller's token"))
    approval_id: ApprovalId | None = None


class CreateAccessKey(Body):
    """``POST /v1/auth/access-keys``: AWS SigV4 credentials for the KMS API, made like a
    child token (the caller's policies, at most its life)."""

    policies: PolicyNames
    ttl: TokenTtl = None
    name: TokenName | None = None
    approval_id: ApprovalId | None = None


_RULE_SCHEMA = {
    "type": "object", "required": ["keys", "operations"], "additionalProperties": False,
    "properties": {
        "keys": {"type": "string", "description": "a glob over key names (* ? **)"},
        "operations": {"type": "array", "minItems": 1, "items": {
            "type": "string", "enum": sorted(OPERATIONS | {ALL_OPERATIONS})}},
        "effect": {"type": "string", "enum": [ALLOW, DENY], "default": ALLOW},
        "conditions": {"type": "object", "additionalProperties": False, "minProperties": 1,
                       "properties": {name: {"type": "array", "items": {"type": "string"}}
                                      for name in CONDITION_FIELDS}}}}


class PutPolicy(Body):
    """``PUT /v1/policies/{name}``. Each rule's grammar is ``auth.rules.parse_rule``'s, applied
    (with the name) once the caller is authorized; here only the shape."""

    rules: Annotated[list[Any], WithJsonSchema({
        "type": "array", "minItems": 1, "maxItems": MAX_RULES, "items": _RULE_SCHEMA})]
    approval_id: ApprovalId | None = None

    def document(self) -> dict[str, Any]:
        """The policy body ``parse_policy`` takes."""
        return {"rules": list(self.rules)}


# -- simulation -------------------------------------------------------------------------------


def _operation(value: object) -> str:
    if not isinstance(value, str) or value not in OPERATIONS:
        raise ValueError(f"must be one of the policy operations, not {shown(value)}")
    return value


def _accessor(value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 64:
        raise ValueError("must be a token's accessor (acc_...)")
    return value


def _client(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("must be an IPv4 or IPv6 address")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError("must be an IPv4 or IPv6 address like 10.1.2.3 or ::1, "
                         f"not {shown(value)}") from None


class SimulatePolicy(Body):
    """``POST /v1/policies/simulate``: the question, and the request facts conditions look at."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [
        {"required": ["token_accessor"], "properties": {
            "token_accessor": {"type": "string"}, "policies": {"type": "null"}}},
        {"required": ["policies"], "properties": {
            "policies": {"type": "array"}, "token_accessor": {"type": "null"}}}]})

    token_accessor: Annotated[str, BeforeValidator(_accessor), WithJsonSchema(
        {"type": "string", "minLength": 1, "maxLength": 64})] | None = None
    policies: PolicyNames | None = None
    operation: Annotated[str, BeforeValidator(_operation),
                         WithJsonSchema({"type": "string", "enum": sorted(OPERATIONS)})]
    key: KeyName | None = None
    context: Context | None = None
    spec: SpecName | None = None
    client: Annotated[str, BeforeValidator(_client),
                      WithJsonSchema({"type": "string", "description": "an IP address"})
                      ] | None = None

    @model_validator(mode="after")
    def _one_question(self) -> SimulatePolicy:
        if (self.token_accessor is None) == (self.policies is None):
            raise InvalidRequest("give exactly one of token_accessor or policies")
        if self.key is None and self.operation in KEY_OPERATIONS:
            raise InvalidRequest(f"{self.operation} is done on a key: give key")
        if self.context is not None and self.operation not in CONTEXT_OPERATIONS:
            raise InvalidRequest(f"context is part of {', '.join(sorted(CONTEXT_OPERATIONS))} "
                                 f"requests, not {self.operation}")
        if self.spec is not None and self.operation not in SPEC_OPERATIONS:
            raise InvalidRequest(f"spec is part of create requests, not {self.operation}")
        return self


# -- approvals --------------------------------------------------------------------------------


class DecideApproval(Body):
    """``POST /v1/approvals/{id}/approve`` or ``/reject``."""

    note: Annotated[str, Field(max_length=MAX_NOTE)] | None = None


class ApprovalOnly(Body):
    """A guarded removal: no fields but the approval id of a re-sent request."""

    approval_id: ApprovalId | None = None


# -- audit ------------------------------------------------------------------------------------


def _checkpoints(value: object) -> tuple[Checkpoint, ...]:
    if not isinstance(value, list):
        raise ValueError("must be a list of checkpoints")
    if len(value) > MAX_TRUSTED_CHECKPOINTS:
        raise ValueError(f"must have at most {MAX_TRUSTED_CHECKPOINTS} entries")
    return tuple(Checkpoint.from_json(item) for item in value)  # ValueError names the rule


_CHECKPOINT_SCHEMA = {
    "type": "object", "required": ["seq", "chain_hash", "time", "key_id", "signature"],
    "properties": {"seq": {"type": "integer", "minimum": 0},
                   "chain_hash": {"type": "string", "minLength": 64, "maxLength": 64},
                   "time": {"type": "number"}, "key_id": {"type": "string"},
                   "signature": {"type": "string", "format": "byte"},
                   # a braid's entry (docs/CLUSTER.md): the whole braid it was signed as
                   "node": {"type": "integer", "minimum": 1},
                   "braid": {"type": "integer", "minimum": 1},
                   "previous": {"type": "string", "minLength": 64, "maxLength": 64},
                   "heads": {"type": "array", "items": {
                       "type": "array", "minItems": 3, "maxItems": 3,
                       "description": "[node, seq, chain_hash]"}}}}


class VerifyAudit(Body):
    """``POST /v1/audit/verify``: checkpoints held outside the database, to check against."""

    checkpoints: Annotated[tuple[Any, ...], BeforeValidator(_checkpoints), WithJsonSchema(
        {"type": "array", "maxItems": MAX_TRUSTED_CHECKPOINTS, "items": _CHECKPOINT_SCHEMA}
    )] = ()

    @property
    def trusted(self) -> list[Checkpoint]:
        return list(self.checkpoints)


class HashValue(Body):
    """``POST /v1/audit/hash``: a context name or value, to search records by its HMAC."""

    value: Annotated[str, Field(max_length=MAX_HASH_INPUT)] = Field(repr=False)


class PutAuditSink(Body):
    """``PUT /v1/sys/audit/sinks/{name}``: a file or syslog sink. The values are checked by
    ``parse_sink_config``, the parser of the config file's ``audit_sinks`` too."""

    type: Annotated[str, WithJsonSchema({"type": "string", "enum": list(SINK_KINDS)})]
    name: str | None = Field(default=None, description="if given, the name in the path")
    policy: Annotated[str, WithJsonSchema({"type": "string", "enum": [REQUIRED, BEST_EFFORT]})
                      ] | None = None
    timeout: Annotated[float, WithJsonSchema(
        {"type": "number", "minimum": 0.01, "maximum": 60})] | None = None
    path: str | None = Field(default=None, description="file sinks")
    max_bytes: Annotated[Integer, WithJsonSchema(
        {"type": "integer", "minimum": 4096, "description": "file sinks"})] | None = None
    keep: Annotated[Integer, WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 1000,
                                         "description": "file sinks: rotated files"})
                    ] | None = None
    fsync: bool | None = Field(default=None, description="file sinks")
    address: str | None = Field(default=None, description="syslog sinks: udp://HOST:PORT, "
                                                          "tcp://HOST:PORT or unix:///PATH")
    facility: Annotated[str, WithJsonSchema({"type": "string", "enum": list(FACILITIES)})
                        ] | None = None

    def to_domain(self, name: str) -> SinkConfig:
        given = self.model_dump(exclude_unset=True)
        given.setdefault("policy", BEST_EFFORT)  # an API sink is never required (sink_targets)
        if given.setdefault("name", name) != name:
            raise InvalidRequest("the sink's name is the one in the path")
        try:
            return parse_sink_config(given)
        except ValueError as exc:
            raise InvalidRequest(str(exc).replace("audit_sinks[0]: ", "")) from None


__all__ = ["KEY_OPERATIONS", "ApprovalId", "ApprovalOnly", "CreateAccessKey",
           "CreateToken", "DecideApproval",
           "HashValue", "PutAuditSink", "PutPolicy", "SimulatePolicy", "VerifyAudit",
           "domain_rule", "duration_schema", "shown"]
