"""One stored seal of the seal set: what it is, where it lives, its copy of the root key.

An entry is public JSON (``seal/set/<id>``): the kind, the id, the kind's
parameters (a module path, a token label, a KMS key id, Argon2 costs and salt)
and the seal's wrapped copy of the root key. It never holds a PIN, passphrase
or credential, only where to find one (``pin_env``, ``pin_file``, the standard
AWS credential chain), so a backup or a database dump reveals nothing secret.

Every wrap binds the seal's id and kind as associated data (``wrap_aad``): a
wrapped root copied into another seal's entry, or relabelled as another kind,
fails to authenticate instead of being tried under the wrong rules.
"""

from __future__ import annotations

import json
import re
from base64 import b64decode, b64encode
from dataclasses import dataclass, field
from typing import Any

from keyquorum.clock import rfc3339
from keyquorum.errors import InvalidRequest

PASSPHRASE = "passphrase"  # noqa: S105 - a seal kind, not a secret
PKCS11 = "pkcs11"
AWSKMS = "awskms"
NODE = "node"  # an enrolled cluster node (seal.node): no wrapped root key, never opens alone
KINDS: tuple[str, ...] = (PASSPHRASE, PKCS11, AWSKMS, NODE)
AUTO_KINDS: frozenset[str] = frozenset({PKCS11, AWSKMS})
"""Seals that open with no person present: the server tries them at start."""

_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,47}$")
RESERVED_IDS = frozenset({"shamir"})


def check_seal_id(value: object) -> str:
    """A seal id: 1-48 of ``[a-z0-9._-]``, starting with a letter or digit; not ``shamir``."""
    if not isinstance(value, str) or not _ID.match(value):
        raise InvalidRequest("a seal id is 1-48 characters of a-z, 0-9, '.', '_' or '-', "
                             "starting with a letter or digit")
    if value in RESERVED_IDS:
        raise InvalidRequest(f"the seal id {value!r} is reserved")
    return value


def wrap_aad(kind: str, seal_id: str) -> bytes:
    """The associated data every seal binds to its wrapped root key."""
    return f"keyquorum/seal-set/v1/root-key|{kind}|{seal_id}".encode()


@dataclass(frozen=True)
class SealEntry:
    """A stored seal; ``params`` are public, ``wrapped_root`` opens only under the seal."""

    kind: str
    id: str
    params: dict[str, Any]
    wrapped_root: bytes = field(repr=False)
    created_at: float = 0.0

    @property
    def aad(self) -> bytes:
        return wrap_aad(self.kind, self.id)

    @property
    def automatic(self) -> bool:
        return self.kind in AUTO_KINDS

    def to_json(self) -> bytes:
        return json.dumps({"kind": self.kind, "id": self.id, "params": self.params,
                           "wrapped_root": b64encode(self.wrapped_root).decode(),
                           "created_at": self.created_at}, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> SealEntry:
        try:
            raw = json.loads(data)
            entry = cls(kind=raw["kind"], id=raw["id"], params=dict(raw["params"]),
                        wrapped_root=b64decode(raw["wrapped_root"], validate=True),
                        created_at=float(raw.get("created_at", 0.0)))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError("a stored seal entry is malformed") from exc
        if entry.kind not in KINDS:
            raise ValueError(f"a stored seal entry names an unknown kind {entry.kind!r}")
        return entry

    def describe(self) -> dict[str, Any]:
        """The public view: type, id, parameters (what seal-status and GET /seals show)."""
        return {"type": self.kind, "id": self.id, "automatic": self.automatic,
                "params": dict(self.params), "created_at": rfc3339(self.created_at)}
