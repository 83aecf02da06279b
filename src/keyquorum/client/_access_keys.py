"""Access keys in the SDK: AWS SigV4 credentials for keyquorum's KMS API, with no I/O.

``AccessKey.secret_access_key`` is the secret: shown once, kept out of reprs.
``AccessKey.shell_exports()`` gives the lines ``eval`` reads (what
``keyquorum access-key create`` prints).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._models import parse_time
from ._protocol import Call, Duration, _duration, _nothing, _one, _put, _segment


@dataclass(frozen=True)
class AccessKey:
    """A newly created access key: ``secret_access_key`` is shown this once."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    accessor: str = ""
    name: str | None = None
    policies: tuple[str, ...] = ()
    expires_at: datetime | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> AccessKey:
        return cls(access_key_id=str(body["access_key_id"]),
                   secret_access_key=str(body["secret_access_key"]),
                   accessor=str(body.get("accessor", "")), name=body.get("name"),
                   policies=tuple(body.get("policies") or ()),
                   expires_at=parse_time(body.get("expires_at")))

    def shell_exports(self) -> str:
        """``export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...`` lines for ``eval``."""
        return (f"export AWS_ACCESS_KEY_ID={shlex.quote(self.access_key_id)}\n"
                f"export AWS_SECRET_ACCESS_KEY={shlex.quote(self.secret_access_key)}\n")


@dataclass(frozen=True)
class AccessKeyInfo:
    """An access key as listed (never its secret)."""

    access_key_id: str
    accessor: str
    name: str | None = None
    policies: tuple[str, ...] = ()
    created_at: datetime | None = None
    created_by: str | None = None
    expires_at: datetime | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> AccessKeyInfo:
        return cls(access_key_id=str(body["access_key_id"]), accessor=str(body["accessor"]),
                   name=body.get("name"), policies=tuple(body.get("policies") or ()),
                   created_at=parse_time(body.get("created_at")),
                   created_by=body.get("created_by"),
                   expires_at=parse_time(body.get("expires_at")))


def create_access_key(policies: Sequence[str], *, ttl: Duration | None = None,
                      name: str | None = None,
                      approval_id: str | None = None) -> Call[AccessKey]:
    body = _put({"policies": list(policies)}, ttl=None if ttl is None else _duration(ttl),
                name=name, approval_id=approval_id)
    return Call("POST", "/v1/auth/access-keys", _one(AccessKey.from_json), json=body)


def list_access_keys() -> Call[list[AccessKeyInfo]]:
    return Call("GET", "/v1/auth/access-keys", _one(
        lambda body: [AccessKeyInfo.from_json(item) for item in body["access_keys"]]))


def revoke_access_key(accessor: str) -> Call[None]:
    return Call("DELETE", f"/v1/auth/access-keys/{_segment(accessor, 'accessor')}", _nothing)
