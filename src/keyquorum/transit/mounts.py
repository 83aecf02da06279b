"""Transit mounts: a Vault mount path maps onto a prefix of keyquorum key names.

``transit`` → ``""`` serves every key by its own name; ``team-a`` → ``team-a/``
serves ``team-a/payments`` as ``team-a/keys/payments``. A Vault key name never
contains ``/`` (Vault's own rule), so a name under one mount can never reach a
key outside its prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from keyquorum.errors import InvalidRequest
from keyquorum.keys.names import validate_key_name

DEFAULT_MOUNTS: tuple[tuple[str, str], ...] = (("transit", ""),)
_MOUNT = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
RESERVED = frozenset({"sys", "auth", "keys", "decrypt", "reencrypt", "random", "approvals",
                      "audit", "policies", "reports", "metrics", "openapi", "identity",
                      "cubbyhole", "kms"})
"""Mount paths that would shadow a native or Vault system path."""


@dataclass(frozen=True)
class Mount:
    path: str
    prefix: str

    def key_name(self, vault_name: str) -> str:
        """The keyquorum key a Vault key name under this mount means."""
        if not vault_name or "/" in vault_name:
            raise InvalidRequest("a transit key name is one path segment")
        return validate_key_name(self.prefix + vault_name)

    def vault_name(self, key_name: str) -> str | None:
        """The Vault name of a keyquorum key, or None when the key is not under this mount."""
        if not key_name.startswith(self.prefix):
            return None
        rest = key_name[len(self.prefix):]
        return rest if rest and "/" not in rest else None


def parse_mounts(value: object) -> tuple[tuple[str, str], ...]:
    """Mounts from the config file (``{"transit": "", "team-a": "team-a/"}``), checked."""
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list | tuple):
        pairs = [tuple(item) for item in value]
    else:
        raise ValueError("vault_transit_mounts must map mount paths to key-name prefixes")
    checked: list[tuple[str, str]] = []
    for pair in pairs:
        if len(pair) != 2 or not all(isinstance(part, str) for part in pair):
            raise ValueError("vault_transit_mounts must map mount paths to key-name prefixes")
        path, prefix = pair
        if not _MOUNT.fullmatch(path) or path in RESERVED:
            raise ValueError(f"vault transit mount {path!r} must be [a-z0-9_-], at most 64 "
                             "characters, and not a system path")
        if prefix:
            try:
                validate_key_name(prefix.removesuffix("/"))
            except InvalidRequest as exc:
                raise ValueError(f"vault transit prefix {prefix!r}: {exc.message}") from None
            if not prefix.endswith("/"):
                raise ValueError(f"vault transit prefix {prefix!r} must end with '/'")
        checked.append((path, prefix))
    if len({path for path, _ in checked}) != len(checked):
        raise ValueError("vault_transit_mounts names a mount twice")
    return tuple(checked)


def mounts_of(pairs: tuple[tuple[str, str], ...]) -> dict[str, Mount]:
    return {path: Mount(path, prefix) for path, prefix in pairs}
