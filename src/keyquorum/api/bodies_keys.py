"""Typed bodies of the key lifecycle routes: the one place their field rules live.

Durations, labels, bounds and names are checked here, once, with the same
functions the rest of the service uses (``parse_duration``, ``validate_key_name``,
``get_spec``); the lifecycle service receives converted domain values (seconds,
not "90d"). Integer bounds follow the storage columns: ``usage_limit`` at most
2^53-1 (read exactly by every JSON parser), versions at most 2^31-1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, WithJsonSchema

from keyquorum.api.bodies import Body, Integer, KeyName, in_range, range_schema
from keyquorum.durations import parse_duration
from keyquorum.errors import InvalidRequest
from keyquorum.keys.specs import SPECS, get_spec
from keyquorum.service.lifecycle import (
    MAX_DELETION_DAYS,
    MAX_USAGE_LIMIT,
    MAX_VERSION,
    MIN_DELETION_DAYS,
    REVOKE_REASONS,
    KeyChanges,
    NewKey,
)

APPROVAL_ID = Annotated[str, Field(min_length=1, max_length=64)]


def _duration(field: str, minimum: int, minimum_text: str) -> Callable[[object], int | None]:
    def parse(value: object) -> int | None:
        try:
            seconds = parse_duration(value, field=field)  # type: ignore[arg-type]
        except InvalidRequest as exc:
            raise ValueError(exc.message) from None
        if seconds is None:
            return None
        if seconds < minimum:
            raise ValueError(f"must be at least {minimum_text}")
        return int(seconds)
    return parse


_HUNDRED_YEARS = 36500 * 86400
_DAYS = r"([1-9][0-9]{0,3}|[1-2][0-9]{4}|3[0-5][0-9]{3})d"  # 1d .. 35999d


def _duration_schema(minimum: int, strings: str) -> dict[str, Any]:
    """The documented spellings: seconds from ``minimum``, or whole hours/days that meet it
    (the server also takes 1h30m and the like; the schema names a safe subset)."""
    return {"anyOf": [
        {"type": "integer", "minimum": minimum, "maximum": _HUNDRED_YEARS},
        {"type": "string", "pattern": f"^({strings})$"},
        {"type": "null"}],
        "description": f"seconds (at least {minimum}), or a string like 90d or 12h"}


RotationPeriod = Annotated[int | None, BeforeValidator(_duration("rotation_period", 3600, "1h")),
                           WithJsonSchema(_duration_schema(3600, rf"{_DAYS}|[1-9][0-9]{{0,4}}h"))]
CryptoPeriod = Annotated[int | None, BeforeValidator(_duration("crypto_period", 86400, "1d")),
                         WithJsonSchema(_duration_schema(86400, _DAYS))]


def _labels(value: dict[str, str]) -> dict[str, str]:
    if len(value) > 64 or any(len(k) > 64 or len(v) > 256 for k, v in value.items()):
        raise ValueError("labels are at most 64 entries, keys <= 64 and values <= 256 characters")
    return value


Labels = Annotated[dict[str, str], AfterValidator(_labels)]
Description = Annotated[str, Field(max_length=4096)]
Owner = Annotated[str, Field(max_length=256)]
UsageLimit = Annotated[Integer, in_range(1, MAX_USAGE_LIMIT), range_schema(1, MAX_USAGE_LIMIT)]
VersionNumber = Annotated[Integer, in_range(1, MAX_VERSION), range_schema(1, MAX_VERSION)]
DeletionDays = Annotated[Integer, in_range(MIN_DELETION_DAYS, MAX_DELETION_DAYS),
                         range_schema(MIN_DELETION_DAYS, MAX_DELETION_DAYS)]
def _spec(value: str) -> str:
    try:
        return get_spec(value).name
    except InvalidRequest as exc:
        raise ValueError(exc.message) from None


SpecName = Annotated[str, AfterValidator(_spec),
                     WithJsonSchema({"type": "string", "enum": list(SPECS)})]


class CreateKey(Body):
    name: KeyName
    spec: SpecName
    purpose: Literal["encrypt", "sign", "mac", "kem", "agree"] | None = None
    description: Description | None = None
    owner: Owner | None = None
    labels: Labels | None = None
    exportable: bool = False
    rotation_period: RotationPeriod = None
    crypto_period: CryptoPeriod = None
    usage_limit: UsageLimit | None = None
    deletion_window_days: DeletionDays | None = None

    def to_domain(self) -> NewKey:
        return NewKey(name=self.name, spec=self.spec, purpose=self.purpose,
                      description=self.description, owner=self.owner,
                      labels=dict(self.labels or {}), exportable=self.exportable,
                      rotation_period=self.rotation_period, crypto_period=self.crypto_period,
                      usage_limit=self.usage_limit,
                      deletion_window_days=self.deletion_window_days)


class UpdateKey(Body):
    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    description: Description | None = None
    owner: Owner | None = None
    labels: Labels | None = None
    rotation_period: RotationPeriod = None
    crypto_period: CryptoPeriod = None
    usage_limit: UsageLimit | None = None
    min_decrypt_version: VersionNumber | None = None

    def to_domain(self) -> KeyChanges:
        given: dict[str, Any] = {name: getattr(self, name) for name in self.model_fields_set}
        if not given:
            raise InvalidRequest("nothing to update")
        if "labels" in given:
            given["labels"] = dict(given["labels"] or {})
        return KeyChanges(given)


class ToggleKey(Body):
    version: VersionNumber | None = None


class RevokeKey(Body):
    reason: Literal[REVOKE_REASONS]  # type: ignore[valid-type]
    version: VersionNumber | None = None
    note: Annotated[str, Field(max_length=1024)] | None = None
    approval_id: APPROVAL_ID | None = None


class ScheduleDeletion(Body):
    days: DeletionDays | None = None
    approval_id: APPROVAL_ID | None = None


class DestroyVersions(Body):
    """Erase the material of every version below ``below`` (at most min_decrypt_version)."""

    below: VersionNumber
    approval_id: APPROVAL_ID | None = None


class NoFields(Body):
    """A route that takes no fields (an empty body, or none at all)."""
