"""The operator's local recovery config: what restore and drill may trust (``--recovery-config``).

A backup file names seals, but a file anyone with write access to backup
storage can swap is no place to learn which library to load or which endpoint to
send signed requests to. This file, kept by the operator on the recovery host,
is the only source of both::

    {
      "expect": ["kqfp1:..."],              # the seal fingerprints backups must have
      "seals": [                            # automatic seals, exactly as configured
        {"type": "pkcs11", "id": "hsm", "module": "/usr/lib/softhsm/libsofthsm2.so",
         "token_label": "kq", "key_label": "root", "pin_env": "KEYQUORUM_HSM_PIN"},
        {"type": "awskms", "id": "kms", "key_id": "arn:...", "region": "eu-west-1"}
      ],
      "kms_plain_http_hosts": [],           # as in the server's config (seal.trust)
      "pkcs11_pin_env_prefix": "KEYQUORUM_HSM_PIN", "pkcs11_pin_dir": null
    }

Each seal is matched to the backup's entry of the same id and kind, from which
only the wrapped root key is taken. The modules and endpoints named here are the
only ones restore or drill will load or call (still checked for ownership and
https, as the server checks its own).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from keyquorum.errors import InvalidRequest
from keyquorum.seal import cloudkms, hsm
from keyquorum.seal.entry import AUTO_KINDS, PKCS11, SealEntry, check_seal_id
from keyquorum.seal.fingerprint import check_fingerprint
from keyquorum.seal.trust import SealTrust

_FIELDS = {"expect", "seals", "kms_plain_http_hosts", "pkcs11_pin_env_prefix",
           "pkcs11_pin_dir"}


@dataclass(frozen=True)
class RecoveryConfig:
    """Pinned fingerprints, locally configured automatic seals, and what they may use."""

    expect: tuple[str, ...] = ()
    seals: tuple[SealEntry, ...] = ()
    trust: SealTrust = field(default_factory=SealTrust)


def parse_recovery_config(raw: object) -> RecoveryConfig:
    """A recovery config from its JSON value (``ValueError`` stating the broken rule)."""
    if not isinstance(raw, dict):
        raise ValueError("a recovery config is a JSON object")
    unknown = set(raw) - _FIELDS
    if unknown:
        raise ValueError(f"unknown recovery config fields: {', '.join(sorted(unknown))}")
    expect = raw.get("expect", [])
    if not isinstance(expect, list):
        raise ValueError("expect must be a list of seal fingerprints")
    fingerprints = tuple(check_fingerprint(item) for item in expect)
    items = raw.get("seals", [])
    if not isinstance(items, list):
        raise ValueError("seals must be a list of seal objects")
    seals = tuple(_seal(item) for item in items)
    if len({s.id for s in seals}) != len(seals):
        raise ValueError("seal ids in the recovery config must be distinct")
    trust = SealTrust.from_config({k: raw[k] for k in _FIELDS - {"expect", "seals"}
                                   if k in raw})
    modules = {str(s.params["module"]) for s in seals if s.kind == PKCS11}
    endpoints = {str(s.params["endpoint_url"]) for s in seals
                 if "endpoint_url" in s.params}
    trust = replace(trust, pkcs11_modules=frozenset(modules),
                    kms_endpoints=frozenset(endpoints))
    for seal in seals:  # https, PIN sources: the server's rules (modules: checked at load)
        try:
            if seal.kind == PKCS11:
                trust.check_pin_source(seal.params)
            else:
                trust.check_endpoint(seal.params.get("endpoint_url"))
        except InvalidRequest as exc:
            raise ValueError(f"seal {seal.id}: {exc.message}") from None
    return RecoveryConfig(fingerprints, seals, trust)


def _seal(item: object) -> SealEntry:
    if not isinstance(item, dict):
        raise ValueError("each seal is a JSON object with a type and an id")
    kind, body = item.get("type"), {k: v for k, v in item.items() if k not in ("type", "id")}
    if kind not in AUTO_KINDS:
        raise ValueError(f"a recovery config lists automatic seals only: "
                         f"{', '.join(sorted(AUTO_KINDS))}")
    try:
        seal_id = check_seal_id(item.get("id", kind))
        params: dict[str, Any] = (hsm.parse_params(body) if kind == PKCS11
                                  else cloudkms.parse_params(body))
    except InvalidRequest as exc:
        raise ValueError(exc.message) from None
    return SealEntry(str(kind), seal_id, params, b"")


def load_recovery_config(path: Path) -> RecoveryConfig:
    """Read and check the file (``ValueError`` naming the file and the rule)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"cannot read the recovery config {path}: "
                         f"{getattr(exc, 'strerror', None) or 'not JSON'}") from None
    try:
        return parse_recovery_config(raw)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
