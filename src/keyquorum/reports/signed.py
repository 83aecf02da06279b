"""Reports an auditor can take away: where they came from, and a signature that shows it.

Every report (JSON or HTML) carries a ``provenance``: the server (node, version),
when it was generated, and the audit chain head it was computed against (the
record count and chain hash, the same head ``audit verify`` and the signed
checkpoints name). It is then signed with the audit checkpoint key (Ed25519), the
key whose public half an auditor already keeps to check audit exports, so
``keyquorum report verify FILE --public-key audit.pem`` shows offline, with no
server, that the page or the JSON came from this service unedited.

What is signed:

- JSON: the canonical JSON (sorted keys, no spaces, UTF-8) of the whole answer
  without its ``signature`` member, after the prefix ``keyquorum-report-v1\\n``.
  Pretty-printing or re-ordering the file does not matter; changing any value does.
- HTML: the page's exact bytes up to the signature comment, after the same prefix.
  The comment is the page's last line: ``<!-- keyquorum-signature {...} -->``.

The signature names the key by id (SHA-256 of its PEM) and carries the public key,
so a page checks on its own; only ``--public-key`` (or a known key id) shows the
key is this server's, which is why verify says which it did.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
from dataclasses import dataclass
from typing import Any

from keyquorum import __version__
from keyquorum.audit.keys import SIGNING_ALG, AuditKeys, key_id_of
from keyquorum.clock import rfc3339
from keyquorum.crypto.signing import verify_with_public_pem

PREFIX = b"keyquorum-report-v1\n"
_COMMENT = re.compile(rb"\n<!-- keyquorum-signature (\{.*\}) -->\n?\Z")


def provenance(node: str, generated_at: float, head: tuple[int, str] | None,
               key_id: str) -> dict[str, Any]:
    """The facts a report is pinned to (all public)."""
    seq, chain_hash = head if head is not None else (0, "0" * 64)
    return {"server": {"node": node, "version": __version__},
            "generated_at": rfc3339(generated_at),
            "audit_chain_head": {"records": seq, "chain_hash": chain_hash},
            "audit_key_id": key_id}


def canonical(body: dict[str, Any]) -> bytes:
    unsigned = {k: v for k, v in body.items() if k != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def _signature(keys: AuditKeys, message: bytes) -> dict[str, str]:
    return {"alg": SIGNING_ALG, "key_id": keys.key_id, "public_key_pem": keys.public_pem,
            "value": base64.b64encode(keys.sign(PREFIX + message)).decode("ascii")}


def sign_json(keys: AuditKeys, body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "signature": _signature(keys, canonical(body))}


def sign_html(keys: AuditKeys, page: str) -> str:
    data = page.encode("utf-8")
    signature = json.dumps(_signature(keys, data), separators=(",", ":"))
    return page + f"\n<!-- keyquorum-signature {signature} -->\n"


@dataclass(frozen=True)
class Verdict:
    """What ``verify`` found: ``ok``, the signer's key id, and whether it was pinned."""

    ok: bool
    reason: str
    key_id: str | None = None
    pinned: bool = False
    provenance: dict[str, Any] | None = None


def _check(signature: Any, message: bytes, public_pem: str | None) -> Verdict:
    if not isinstance(signature, dict) or signature.get("alg") != SIGNING_ALG:
        return Verdict(False, "no keyquorum report signature found")
    embedded = str(signature.get("public_key_pem") or "")
    key_id = str(signature.get("key_id") or "")
    if key_id_of(embedded) != key_id:
        return Verdict(False, "the signature's public key does not match its key id")
    if public_pem is not None and key_id_of(public_pem) != key_id:
        return Verdict(False, f"signed by key {key_id[:16]}..., not by the given public key",
                       key_id)
    try:
        value = base64.b64decode(str(signature.get("value")), validate=True)
        valid = verify_with_public_pem(SIGNING_ALG, embedded, value, message=PREFIX + message)
    except (binascii.Error, ValueError):
        valid = False
    if not valid:
        return Verdict(False, "the signature does not match: the report was changed after "
                       "it was signed", key_id)
    return Verdict(True, "signature valid", key_id, public_pem is not None)


def verify(data: bytes, public_pem: str | None = None) -> Verdict:
    """Check a saved report (JSON or HTML) offline."""
    found = _COMMENT.search(data)
    if found is not None:
        try:
            signature = json.loads(found.group(1))
        except ValueError:
            return Verdict(False, "the signature comment is not readable")
        verdict = _check(signature, data[:found.start()], public_pem)
        meta = re.search(rb'<meta name="keyquorum-provenance" content="([^"]*)">',
                         data[:found.start()])
        facts = (json.loads(html.unescape(meta.group(1).decode("utf-8")))
                 if meta and verdict.ok else None)
        return Verdict(verdict.ok, verdict.reason, verdict.key_id, verdict.pinned, facts)
    try:
        body = json.loads(data)
    except ValueError:
        return Verdict(False, "neither a signed keyquorum HTML report nor its JSON")
    if not isinstance(body, dict):
        return Verdict(False, "not a keyquorum report")
    verdict = _check(body.get("signature"), canonical(body), public_pem)
    facts = body.get("provenance") if verdict.ok else None
    return Verdict(verdict.ok, verdict.reason, verdict.key_id, verdict.pinned, facts)
