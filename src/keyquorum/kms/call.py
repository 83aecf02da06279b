"""One KMS request on its way through the pipeline, and the typed reading of its fields.

Input shapes come from botocore's KMS model (``service-2.json``, the source the
AWS SDKs are generated from): a field the operation does not define, a missing
required field or a value of the wrong JSON type is refused with AWS's
exception before anything runs. Operations then read their fields through the
helpers here, which apply keyquorum's rules (context size, plaintext size) and
AWS's (base64 blobs, enum values).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TypeVar

from botocore.loaders import Loader
from starlette.concurrency import run_in_threadpool

from keyquorum.api.bodies import MAX_CONTEXT_BYTES, MAX_CONTEXT_ENTRIES
from keyquorum.api.runner import Permission
from keyquorum.api.services import Services
from keyquorum.auth.identity import Identity
from keyquorum.keys.models import Key
from keyquorum.kms.errors import KmsRequestError, serialization, unsupported, validation
from keyquorum.kms.ids import Names, Target, arn_region, key_id_of, resolve
from keyquorum.service.context import RequestContext

T = TypeVar("T")
MAX_PLAINTEXT = 4096
"""AWS's bound on Encrypt's Plaintext (and on Sign's RAW Message, GenerateMac's Message)."""
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "blob": (str,), "integer": (int,), "long": (int,),
    "boolean": (bool,), "list": (list,), "map": (dict,), "structure": (dict,),
    "timestamp": (int, float, str),
}


@cache
def kms_model() -> dict[str, Any]:
    """botocore's KMS service model (loaded once)."""
    model: dict[str, Any] = Loader().load_service_model("kms", "service-2")
    return model


def input_members(action: str) -> tuple[dict[str, str], frozenset[str]]:
    """(member → JSON type, required members) of an operation's input."""
    model = kms_model()
    if action not in model["operations"]:  # an older botocore than the operation
        raise unsupported(f"{action} is not in this server's KMS model")
    shape_name = model["operations"][action].get("input", {}).get("shape")
    if shape_name is None:
        return {}, frozenset()
    shape = model["shapes"][shape_name]
    members = {name: model["shapes"][ref["shape"]]["type"]
               for name, ref in shape.get("members", {}).items()}
    return members, frozenset(shape.get("required", ()))


def check_shape(action: str, body: dict[str, Any]) -> None:
    """Unknown fields, missing required fields and wrong JSON types, as AWS refuses them."""
    members, required = input_members(action)
    unknown = sorted(set(body) - set(members))
    if unknown:
        raise serialization(f"{action} has no field {unknown[0]}")
    missing = sorted(name for name in required if body.get(name) is None)
    if missing:
        raise validation(f"1 validation error detected: Value null at '{missing[0]}' "
                         "failed to satisfy constraint: Member must not be null")
    for name, value in body.items():
        if value is None:
            continue
        kinds = _JSON_TYPES.get(members[name], (object,))
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise serialization(f"{name} must be a JSON {members[name]}")
    if body.get("DryRun") is True:
        raise unsupported("DryRun is not supported by keyquorum; send the request without it")
    if body.get("GrantTokens"):
        raise unsupported("grants are not supported by keyquorum (GrantTokens); access is "
                          "given by policies attached to the access key")


@dataclass
class KmsCall:
    """The caller, the request's fields and the way into the pipeline for one KMS request."""

    services: Services
    ctx: RequestContext
    identity: Identity
    action: str
    body: dict[str, Any] = field(repr=False)  # plaintexts and data keys travel in it
    names: Names
    approval_id: str | None = None

    async def run(self, operation: str, key: str | None, work: Callable[[RequestContext], T],
                  *, permission: Permission, spec: str | None = None) -> Any:
        """The native twin's pipeline: its permission on ``key``, ``work`` in a thread,
        the audit record (with this action and access key in its detail)."""
        return await self.services.runner.execute(
            self.ctx, operation, key, work, permission=permission,
            credential=lambda _ctx: self.identity, in_thread=True, spec=spec)

    async def target(self, field: str = "KeyId", *, cached: bool = False) -> Target:
        """The key ``field`` names. ``cached``: a KeyId or key ARN of a key in the key
        cache is answered from memory (crypto operations; the service checks the key's
        state again), anything else from storage in a thread."""
        identifier = self.body.get(field)
        core = self.services.core
        region = arn_region(identifier)
        if region is not None and field in ("KeyId", "TargetKeyId"):
            self.names = Names(region=region, account=self.names.account)
        if cached and isinstance(identifier, str):
            loaded = core.keys.cached_by_id(key_id_of(identifier, self.names))
            if loaded is not None:
                return Target(loaded.key.name, loaded.key)

        def find() -> Target:
            core.barrier()
            with core.engine.connect() as conn:
                return resolve(conn, identifier, self.names)

        return await run_in_threadpool(find)

    # -- fields ------------------------------------------------------------------------

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.body.get(name)
        return default if value is None else str(value)

    def blob(self, name: str, *, limit: int | None = None) -> bytes | None:
        value = self.body.get(name)
        if value is None:
            return None
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise serialization(f"{name} is not valid base64") from None
        if not data:
            raise validation(f"1 validation error detected: Value at '{name}' failed to "
                             "satisfy constraint: Member must have length greater than or "
                             "equal to 1")
        if limit is not None and len(data) > limit:
            raise validation(f"1 validation error detected: Value at '{name}' failed to "
                             f"satisfy constraint: Member must have length less than or "
                             f"equal to {limit}")
        return data

    def integer(self, name: str, low: int, high: int, default: int | None = None
                ) -> int | None:
        value = self.body.get(name)
        if value is None:
            return default
        if not low <= value <= high:
            raise validation(f"1 validation error detected: Value '{value}' at '{name}' "
                             f"failed to satisfy constraint: Member must be between {low} "
                             f"and {high}")
        return int(value)

    def choice(self, name: str, allowed: tuple[str, ...], default: str | None = None
               ) -> str | None:
        value = self.body.get(name, default)
        if value is not None and value not in allowed:
            raise validation(f"1 validation error detected: Value '{value}' at '{name}' "
                             "failed to satisfy constraint: Member must satisfy enum value "
                             f"set: [{', '.join(allowed)}]")
        return value

    def context(self, name: str = "EncryptionContext") -> dict[str, str] | None:
        value = self.body.get(name)
        if value is None or value == {}:
            return None
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise serialization(f"{name} must map strings to strings")
        if len(value) > MAX_CONTEXT_ENTRIES or sum(
                len(k) + len(v) for k, v in value.items()) > MAX_CONTEXT_BYTES:
            raise validation(f"{name} is limited to {MAX_CONTEXT_ENTRIES} entries and "
                             f"{MAX_CONTEXT_BYTES} bytes")
        return dict(value)


def require_usage(key: Key, purpose: str, action: str) -> None:
    """InvalidKeyUsageException unless the key is for ``purpose`` (as AWS checks KeyUsage)."""
    if key.purpose != purpose:
        from keyquorum.kms.ids import USAGES

        raise KmsRequestError(
            f"{action} needs a {USAGES[purpose]} key; this key's KeyUsage is "
            f"{USAGES.get(key.purpose, key.purpose.upper())}", "InvalidKeyUsageException")
