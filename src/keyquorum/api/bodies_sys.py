"""Typed bodies of the system routes: init, unseal, dual control, seals, custodians, rekey.

Strict models as in ``bodies``; the field rules stay in the domain functions
they always lived in — share counts and custodian names (``seal.shamir``),
dual control settings (``auth.dual_settings.parse_settings``, which the config
file goes through too), seal kinds (``seal.kinds.parse_request``) — called from
the model, so a body is refused whole before anything is authorized or run and
the services receive domain values (``ShareSplit``-like arguments,
``DualControlSettings``, ``SealRequest``, ``RekeyRequest``).

The token-less ceremonies (init, unseal, custodian proofs, rekey shares) are
parsed here too: a malformed one never reaches the service.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from keyquorum.api.bodies import Base64Bytes, Body, Integer, parse_body
from keyquorum.api.bodies_admin import ApprovalId, duration_schema
from keyquorum.auth.dual_settings import (
    ACTIONS,
    MAX_APPROVALS,
    MAX_TTL,
    MIN_TTL,
    DualControlSettings,
    parse_settings,
)
from keyquorum.errors import InvalidRequest
from keyquorum.seal.custodian_key import ALGORITHM as CUSTODIAN_KEY_ALGORITHM
from keyquorum.seal.custodian_key import MAX_PUBLIC_PEM, check_public_key
from keyquorum.seal.entry import KINDS
from keyquorum.seal.kinds import SealRequest, parse_request
from keyquorum.seal.shamir import MAX_SHARES, check_margin, validate_custodians, validate_split
from keyquorum.service.rekey import RekeyRequest


def _non_empty(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("must be a non-empty string")
    return value


def _true(value: object) -> bool:
    if value is not True:
        raise ValueError("must be true")
    return True


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError("must be a non-negative number")
    return float(value)


NonEmpty = Annotated[str, BeforeValidator(_non_empty),
                     WithJsonSchema({"type": "string", "minLength": 1})]
OnlyTrue = Annotated[bool, BeforeValidator(_true),
                     WithJsonSchema({"type": "boolean", "const": True})]
ShareCount = Annotated[Integer, WithJsonSchema({"type": "integer", "minimum": 1,
                                            "maximum": MAX_SHARES})]
CustodianNames = Annotated[list[str], WithJsonSchema({
    "type": "array", "items": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$"},
    "description": "one distinct name per share, in share order"})]


def _custodian_keys(value: object) -> dict[str, str]:
    if not isinstance(value, dict) or not value or len(value) > MAX_SHARES:
        raise ValueError(f"must map custodian names to {CUSTODIAN_KEY_ALGORITHM} public "
                         "key PEMs")
    return {str(name): check_public_key(pem, str(name)[:64]) for name, pem in value.items()}


def _public_key(value: object) -> str:
    return check_public_key(value, "the custodian")


_PEM_SCHEMA = {"type": "string", "maxLength": MAX_PUBLIC_PEM,
               "description": f"an {CUSTODIAN_KEY_ALGORITHM} public key PEM "
                              "(`keyquorum custodian keygen`)"}
CustodianKeys = Annotated[dict[str, str], BeforeValidator(_custodian_keys), WithJsonSchema({
    "type": "object", "minProperties": 1, "additionalProperties": _PEM_SCHEMA,
    "description": "custodian name -> public key: each new share is sealed to its "
                   "custodian's key and answered only as a ciphertext"})]
CustodianPublicKey = Annotated[str, BeforeValidator(_public_key), WithJsonSchema(_PEM_SCHEMA)]


# -- init and unseal -------------------------------------------------------------------------


class InitService(Body):
    """``POST /v1/sys/init``: split the new root key's seal into ``shares``, ``threshold`` of
    them needed; k = n only with ``force`` (losing any one share would lock the data)."""

    shares: ShareCount
    threshold: ShareCount
    custodians: CustodianNames | None = None
    force: bool = False
    custodian_keys: CustodianKeys | None = Field(default=None, repr=False)

    @model_validator(mode="after")
    def _split(self) -> InitService:
        validate_split(self.shares, self.threshold)
        validate_custodians(self.custodians, self.shares)
        check_margin(self.shares, self.threshold, self.force)
        return self


_UNSEAL_WAYS = ("share", "passphrase", "auto", "reset")


class Unseal(Body):
    """``POST /v1/sys/unseal``: one share, a passphrase, the automatic seals again, or a reset."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [
        {"required": [way], "properties": {
            way: {"type": "boolean" if way in ("auto", "reset") else "string"},
            **{other: {"type": "null"} for other in _UNSEAL_WAYS if other != way}}}
        for way in _UNSEAL_WAYS]})

    share: str | None = Field(default=None, repr=False)
    passphrase: NonEmpty | None = Field(default=None, repr=False)
    auto: OnlyTrue | None = None
    reset: OnlyTrue | None = None
    nonce: str | None = Field(default=None, max_length=64, description=(
        "with reset: the nonce the share submissions of this round answered"))

    @model_validator(mode="after")
    def _one_way(self) -> Unseal:
        given = [value for value in (self.share, self.passphrase, self.auto, self.reset)
                 if value is not None]
        if len(given) != 1:
            raise InvalidRequest('give {"share": ...}, {"passphrase": ...}, {"auto": true} '
                                 'or {"reset": true, "nonce": ...}')
        if self.nonce is not None and self.reset is None:
            raise InvalidRequest("nonce goes with reset only")
        return self


# -- dual control and the test clock ---------------------------------------------------------


def _duration_shape(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("must be a number of seconds or a string like 90d, 12h or 1h30m")
    return value


class PutDualControl(Body):
    """``PUT /v1/sys/dual-control``. The values are checked by ``parse_settings``, which
    reads the config file's ``dual_control`` too (approvals 0-16, known actions, 1m-30d)."""

    approvals: Annotated[Integer, WithJsonSchema({"type": "integer", "minimum": 0,
                                              "maximum": MAX_APPROVALS,
                                              "description": "0 turns dual control off"})]
    operations: Annotated[list[str], WithJsonSchema({
        "type": "array", "minItems": 1, "items": {"type": "string", "enum": sorted(ACTIONS)}})
    ] | None = None
    ttl: Annotated[Any, BeforeValidator(_duration_shape), WithJsonSchema(duration_schema(
        MIN_TTL, MAX_TTL, "[1-9][0-9]{0,2}m|[1-9][0-9]?h|[1-9]d|[12][0-9]d|30d"))] = None
    approval_id: ApprovalId | None = None

    def to_domain(self) -> DualControlSettings:
        return parse_settings(self.model_dump(exclude_unset=True, exclude={"approval_id"}),
                              where="dual control")


class AdvanceClock(Body):
    """``POST /v1/sys/unsafe/clock`` (test servers only): move time forward."""

    advance_seconds: Annotated[float, BeforeValidator(_seconds),
                               WithJsonSchema({"type": "number", "minimum": 0})]


# -- seals ----------------------------------------------------------------------------------


class _AddSeal(Body):
    id: str | None = Field(default=None, description="1-48 of a-z 0-9 . _ -; default: the type")
    approval_id: ApprovalId | None = None

    def to_domain(self) -> SealRequest:
        return parse_request(self.model_dump(exclude_unset=True, exclude={"approval_id"}))


class AddPassphraseSeal(_AddSeal):
    type: Literal["passphrase"]
    passphrase: str = Field(repr=False, description="16-1024 characters")


class AddPkcs11Seal(_AddSeal):
    type: Literal["pkcs11"]
    module: str = Field(description="absolute path of the vendor's PKCS#11 library")
    token_label: str
    key_label: str
    pin_env: str | None = Field(default=None, description="the variable holding the PIN")
    pin_file: str | None = Field(default=None, description="absolute path of the PIN file")


class AddAwsKmsSeal(_AddSeal):
    type: Literal["awskms"]
    key_id: str = Field(description="key id, ARN or alias")
    region: str
    endpoint_url: str | None = None


class AddNodeSeal(_AddSeal):
    """Enrol a cluster node (its id is the node's ``node_name``): once custodians complete
    the ceremony, unsealed nodes hand it the root key sealed to ``public_key``."""

    type: Literal["node"]
    public_key: str = Field(description="the node's X25519-ML-KEM-768 PUBLIC KEY PEM "
                                        "(keyquorum operator node-key)")


SEAL_MODELS: dict[str, type[_AddSeal]] = {
    "passphrase": AddPassphraseSeal, "pkcs11": AddPkcs11Seal, "awskms": AddAwsKmsSeal,
    "node": AddNodeSeal}
_SECRETS_HINT = {
    "pkcs11": "the PIN itself is never sent: give pin_env or pin_file",
    "awskms": "credentials come from the standard AWS chain, never the request",
}


def parse_seal(body: dict[str, Any]) -> SealRequest:
    """``POST /v1/sys/seals``: the model of the body's ``type``, then the kind's own checks."""
    kind = body.get("type")
    if kind == "shamir":
        raise InvalidRequest("the Shamir seal is made at init and changed by rekey")
    if not isinstance(kind, str) or kind not in SEAL_MODELS:
        raise InvalidRequest(f"type must be one of: {', '.join(KINDS)}")
    model = SEAL_MODELS[kind]
    try:
        asked = parse_body(model, body)
    except InvalidRequest as exc:
        hint = _SECRETS_HINT.get(kind)
        if hint and exc.message.startswith("unknown fields"):
            raise InvalidRequest(f"{kind}: {exc.message}; {hint}") from None
        raise
    return asked.to_domain()


def seal_request_body() -> dict[str, Any]:
    """``openapi_extra`` of ``POST /v1/sys/seals``: one of the kinds, chosen by ``type``."""
    refs = {kind: f"#/components/schemas/{model.__name__}" for kind, model in SEAL_MODELS.items()}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "oneOf": [{"$ref": ref} for ref in refs.values()],
        "discriminator": {"propertyName": "type", "mapping": refs}}}}}}


# -- custodians and rekey -------------------------------------------------------------------


def _challenge_id(value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 36:
        raise ValueError("must be the id of a challenge")
    return value


ChallengeId = Annotated[str, BeforeValidator(_challenge_id),
                        WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 36})]


class ProveCustodian(Body):
    """``POST /v1/sys/custodians/{name}/proof``: a Schnorr proof of share possession."""

    challenge_id: ChallengeId
    proof: Base64Bytes


class RegisterCustodianKey(Body):
    """``POST /v1/sys/custodians/{name}/key``: a public key, and a proof of possession of
    the custodian's current share bound to that key (``seal.custodian_proof``)."""

    challenge_id: ChallengeId
    proof: Base64Bytes
    public_key: CustodianPublicKey


def _swap(value: object) -> tuple[str, str]:
    if not isinstance(value, dict) or set(value) != {"custodian", "with"} \
            or not all(isinstance(name, str) for name in value.values()):
        raise ValueError('must be {"custodian": OLD, "with": NEW}')
    return value["custodian"], value["with"]


def _nonce(value: object) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        raise ValueError("must be the nonce of the rekey in progress")
    return value


_REKEY_FIELDS = ("shares", "threshold", "custodians", "force", "replace", "reissue")


def _alone(plan: str, kind: str) -> dict[str, Any]:
    """The schema of a plan that goes alone (only ``approval_id`` may come with it)."""
    return {"required": [plan], "properties": {plan: {"type": kind}},
            "not": {"anyOf": [{"required": [other]} for other in _REKEY_FIELDS
                              if other != plan]}}


class StartRekey(Body):
    """``POST /v1/sys/rekey/init``: one plan — ``{shares, threshold, custodians?, force?}``,
    ``{replace: {custodian, with}}`` or ``{reissue: true}``."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [
        {"required": ["shares", "threshold"],
         "properties": {"shares": {"type": "integer"}, "threshold": {"type": "integer"},
                        "replace": {"type": "null"}, "reissue": {"type": "null"}}},
        _alone("replace", "object"), _alone("reissue", "boolean")]})

    shares: ShareCount | None = None
    threshold: ShareCount | None = None
    custodians: CustodianNames | None = None
    force: bool = False
    replace: Annotated[tuple[str, str], BeforeValidator(_swap), WithJsonSchema({
        "type": "object", "required": ["custodian", "with"], "additionalProperties": False,
        "properties": {"custodian": {"type": "string", "description": "who leaves"},
                       "with": {"type": "string", "description": "who takes the share"}}})
    ] | None = None
    reissue: OnlyTrue | None = None
    approval_id: ApprovalId | None = None
    custodian_keys: CustodianKeys | None = Field(default=None, repr=False)

    @model_validator(mode="after")
    def _one_plan(self) -> StartRekey:
        given = self.model_fields_set - {"approval_id", "custodian_keys"}
        if self.replace is not None and given != {"replace"}:
            raise InvalidRequest('replace goes alone: {"replace": {"custodian": OLD, '
                                 '"with": NEW}}')
        if self.reissue is not None and given != {"reissue"}:
            raise InvalidRequest('reissue goes alone: {"reissue": true}')
        if self.replace is None and self.reissue is None:
            validate_split(self.shares, self.threshold)
            assert self.shares is not None and self.threshold is not None
            validate_custodians(self.custodians, self.shares)
            check_margin(self.shares, self.threshold, self.force)
        return self

    def to_domain(self) -> RekeyRequest:
        keys = self.custodian_keys
        if self.replace is not None:
            return RekeyRequest("replace", replaced=self.replace[0],
                                replacement=self.replace[1], custodian_keys=keys)
        if self.reissue:
            return RekeyRequest("reissue", custodian_keys=keys)
        assert self.shares is not None and self.threshold is not None
        names = tuple(self.custodians) if self.custodians is not None else None
        return RekeyRequest("change", self.shares, self.threshold, names, custodian_keys=keys)


class SubmitRekeyShare(Body):
    """``POST /v1/sys/rekey/update``: a current share, for the ceremony its nonce names."""

    nonce: Annotated[str, BeforeValidator(_nonce),
                     WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 64})]
    share: str = Field(repr=False)


__all__ = ["SEAL_MODELS", "AddAwsKmsSeal", "AddPassphraseSeal", "AddPkcs11Seal",
           "AdvanceClock", "InitService", "ProveCustodian", "PutDualControl",
           "RegisterCustodianKey", "StartRekey", "SubmitRekeyShare", "Unseal", "parse_seal",
           "seal_request_body"]
