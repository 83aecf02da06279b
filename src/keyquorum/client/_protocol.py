"""Requests and answers of the keyquorum HTTP API, with no I/O.

Every API operation is a function here returning a ``Call``: the method, path,
query and JSON body to send, and how to read the answer. ``Client`` and
``AsyncClient`` only send a ``Call`` and hand the answer to ``finish``; so the
two share all request building and answer parsing, and differ only in I/O.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from ._models import (
    AuditPage,
    AuditVerification,
    Custodian,
    CustodianProof,
    DataKey,
    DataKeyItem,
    DecapsulateItem,
    DecryptItem,
    DecryptResult,
    DeletionScheduled,
    EncryptItem,
    EncryptResult,
    Health,
    InitResult,
    Key,
    KeyPage,
    Mac,
    Policy,
    PolicyDecision,
    PolicyRule,
    PublicKey,
    ReencryptItem,
    Seal,
    SealStatus,
    SharedSecret,
    Signature,
    SignItem,
    Token,
    TokenInfo,
    Verification,
    VerifyItem,
    VerifyMacItem,
    b64decode,
    b64encode,
    rules_to_json,
)
from .errors import KeyquorumAPIError, error_from_body

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741 - a batch item's result type

DEFAULT_ADDR = "http://127.0.0.1:8200"
DEFAULT_TIMEOUT = 30.0
ADDR_ENV = "KEYQUORUM_ADDR"
TOKEN_ENV = "KEYQUORUM_TOKEN"  # noqa: S105 - the name of a variable, not a secret

Context = Mapping[str, str]
Duration = int | str | timedelta
BatchResult = list[T | KeyquorumAPIError]


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request to send and the reader of its answer."""

    method: str
    path: str
    parse: Callable[[Any, str | None], T]
    json: Any = None
    params: tuple[tuple[str, str], ...] = ()
    auth: bool = True
    answer_on_error: bool = False  # health answers 503 with a health body when sealed
    text: bool = False  # a successful answer is text (HTML report, metrics), not JSON


def resolve_addr(addr: str | None) -> str:
    return (addr or os.environ.get(ADDR_ENV) or DEFAULT_ADDR).rstrip("/")


def resolve_token(token: str | None) -> str | None:
    return token or os.environ.get(TOKEN_ENV) or None


def finish(call: Call[T], status: int, request_id: str | None, content: bytes) -> T:
    """Turn an HTTP answer into the call's result, or raise the API error it carries."""
    if call.text and 200 <= status < 300:
        return call.parse(content.decode("utf-8", "replace"), request_id)
    body: Any = None
    if content:
        try:
            body = json.loads(content)
        except ValueError:
            body = None
    ok = 200 <= status < 300 or (
        call.answer_on_error and isinstance(body, Mapping) and "error" not in body)
    if not ok and status >= 400:
        raise error_from_body(body, status=status, request_id=request_id)
    if not ok or (content and body is None):
        raise KeyquorumAPIError(f"unexpected answer from the server (HTTP {status})",
                                code="unexpected_answer", status=status, request_id=request_id)
    return call.parse(body, request_id)


def _one(reader: Callable[[Mapping[str, Any]], T]) -> Callable[[Any, str | None], T]:
    return lambda body, _request_id: reader(body)


def _nothing(_body: Any, _request_id: str | None) -> None:
    return None


def _batch(reader: Callable[[Mapping[str, Any]], I]) -> Callable[[Any, str | None], BatchResult[I]]:
    def parse(body: Any, request_id: str | None) -> BatchResult[I]:
        out: BatchResult[I] = []
        for item in body.get("results") or ():
            if isinstance(item, Mapping) and "error" in item:
                out.append(error_from_body(item, status=None, request_id=request_id))
            else:
                out.append(reader(item))
        return out

    return parse


# --- small encoders -----------------------------------------------------------


def key_path(name: str, suffix: str = "") -> str:
    """The path of a key; hierarchical names keep their slashes."""
    # Refuse dot segments here: an HTTP stack may resolve "a/../b" to another key's path.
    if not name or any(seg in ("", ".", "..") for seg in name.split("/")):
        raise ValueError("key name must be segments of [a-z0-9._-] separated by '/', "
                         "with no empty, '.' or '..' segment")
    return f"/v1/keys/{quote(name, safe='/')}{suffix}"


def _segment(value: str, what: str) -> str:
    if not value or value in (".", ".."):
        raise ValueError(f"{what} must not be empty, '.' or '..'")
    return quote(value, safe="")


def _bytes(value: bytes | str) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _duration(value: Duration) -> int | str:
    if isinstance(value, timedelta):
        return int(value.total_seconds())
    return value


def _time(value: datetime | str) -> str:
    return value.isoformat() if isinstance(value, datetime) else value


def _put(body: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Add the fields that were given (not None) to a body."""
    body.update({k: v for k, v in fields.items() if v is not None})
    return body


def _context(context: Context | None) -> dict[str, str] | None:
    return None if context is None else {str(k): str(v) for k, v in context.items()}


# --- system -------------------------------------------------------------------


def health() -> Call[Health]:
    return Call("GET", "/v1/sys/health", _one(Health.from_json), auth=False, answer_on_error=True)


def init(shares: int, threshold: int, custodians: Sequence[str] | None = None,
         force: bool = False) -> Call[InitResult]:
    body = _put({"shares": shares, "threshold": threshold},
                custodians=None if custodians is None else list(custodians),
                force=True if force else None)
    return Call("POST", "/v1/sys/init", _one(InitResult.from_json), json=body, auth=False)


def seal_status() -> Call[SealStatus]:
    return Call("GET", "/v1/sys/seal-status", _one(SealStatus.from_json), auth=False)


def unseal(share: str) -> Call[SealStatus]:
    return Call("POST", "/v1/sys/unseal", _one(SealStatus.from_json),
                json={"share": share.strip()}, auth=False)


def unseal_reset() -> Call[SealStatus]:
    return Call("POST", "/v1/sys/unseal", _one(SealStatus.from_json),
                json={"reset": True}, auth=False)


def seal() -> Call[SealStatus]:
    return Call("POST", "/v1/sys/seal", _one(SealStatus.from_json), json={})


def unseal_passphrase(passphrase: str) -> Call[SealStatus]:
    return Call("POST", "/v1/sys/unseal", _one(SealStatus.from_json),
                json={"passphrase": passphrase}, auth=False)


def unseal_auto() -> Call[SealStatus]:
    return Call("POST", "/v1/sys/unseal", _one(SealStatus.from_json), json={"auto": True},
                auth=False)


def list_seals() -> Call[list[Seal]]:
    return Call("GET", "/v1/sys/seals",
                lambda body, _rid: [Seal.from_json(s) for s in body.get("seals") or ()])


def add_seal(kind: str, params: Mapping[str, Any], *, seal_id: str | None = None,
             approval_id: str | None = None) -> Call[Seal]:
    body = _put({"type": kind, **params}, id=seal_id, approval_id=approval_id)
    return Call("POST", "/v1/sys/seals", _one(Seal.from_json), json=body)


def remove_seal(seal_id: str, *, approval_id: str | None = None) -> Call[None]:
    params = () if approval_id is None else (("approval_id", approval_id),)
    return Call("DELETE", f"/v1/sys/seals/{_segment(seal_id, 'seal id')}", _nothing,
                params=params)


def custodians() -> Call[list[Custodian]]:
    def parse(body: Any, _rid: str | None) -> list[Custodian]:
        items = body.get("custodians", []) if isinstance(body, Mapping) else body
        return [Custodian.from_json(c) for c in items or ()]

    return Call("GET", "/v1/sys/custodians", parse)


def prove_custodian(name: str, proof: Mapping[str, Any]) -> Call[CustodianProof]:
    return Call("POST", f"/v1/sys/custodians/{_segment(name, 'custodian name')}/proof",
                _one(CustodianProof.from_json), json=dict(proof))


# --- keys ---------------------------------------------------------------------


def create_key(name: str, spec: str, *, purpose: str | None = None,
               description: str | None = None, owner: str | None = None,
               labels: Mapping[str, str] | None = None, exportable: bool | None = None,
               rotation_period: Duration | None = None, usage_limit: int | None = None,
               deletion_window_days: int | None = None,
               crypto_period: Duration | None = None) -> Call[Key]:
    key_path(name)  # validate early, with the same rule
    body = _put({"name": name, "spec": spec}, purpose=purpose, description=description,
                owner=owner, labels=None if labels is None else dict(labels),
                exportable=exportable,
                rotation_period=None if rotation_period is None else _duration(rotation_period),
                crypto_period=None if crypto_period is None else _duration(crypto_period),
                usage_limit=usage_limit, deletion_window_days=deletion_window_days)
    return Call("POST", "/v1/keys", _one(Key.from_json), json=body)


def list_keys(*, prefix: str | None = None, state: str | None = None, spec: str | None = None,
              owner: str | None = None, labels: Mapping[str, str] | None = None,
              limit: int | None = None, page_token: str | None = None) -> Call[KeyPage]:
    params: list[tuple[str, str]] = [
        (k, str(v)) for k, v in (("prefix", prefix), ("state", state), ("spec", spec),
                                 ("owner", owner), ("limit", limit), ("page_token", page_token))
        if v is not None
    ]
    params += [("label", f"{k}:{v}") for k, v in (labels or {}).items()]
    return Call("GET", "/v1/keys", _one(KeyPage.from_json), params=tuple(params))


def get_key(name: str) -> Call[Key]:
    return Call("GET", key_path(name), _one(Key.from_json))


def update_key(name: str, *, description: str | None = None, owner: str | None = None,
               labels: Mapping[str, str] | None = None, rotation_period: Duration | None = None,
               usage_limit: int | None = None, min_decrypt_version: int | None = None,
               crypto_period: Duration | None = None) -> Call[Key]:
    body = _put({}, description=description, owner=owner,
                labels=None if labels is None else dict(labels),
                rotation_period=None if rotation_period is None else _duration(rotation_period),
                crypto_period=None if crypto_period is None else _duration(crypto_period),
                usage_limit=usage_limit, min_decrypt_version=min_decrypt_version)
    return Call("PATCH", key_path(name), _one(Key.from_json), json=body)


def rotate_key(name: str) -> Call[Key]:
    return Call("POST", key_path(name, "/rotate"), _one(Key.from_json), json={})


def disable_key(name: str, version: int | None = None) -> Call[Key]:
    return Call("POST", key_path(name, "/disable"), _one(Key.from_json),
                json=_put({}, version=version))


def enable_key(name: str, version: int | None = None) -> Call[Key]:
    return Call("POST", key_path(name, "/enable"), _one(Key.from_json),
                json=_put({}, version=version))


def revoke_key(name: str, reason: str, *, version: int | None = None, note: str | None = None,
               approval_id: str | None = None) -> Call[Key]:
    return Call("POST", key_path(name, "/revoke"), _one(Key.from_json),
                json=_put({"reason": reason}, version=version, note=note,
                          approval_id=approval_id))


def schedule_deletion(name: str, days: int | None = None, *,
                      approval_id: str | None = None) -> Call[DeletionScheduled]:
    return Call("POST", key_path(name, "/schedule-deletion"),
                _one(DeletionScheduled.from_json),
                json=_put({}, days=days, approval_id=approval_id))


def cancel_deletion(name: str) -> Call[Key]:
    return Call("POST", key_path(name, "/cancel-deletion"), _one(Key.from_json), json={})


def public_key(name: str, version: int | None = None) -> Call[PublicKey]:
    params = () if version is None else (("version", str(version)),)
    return Call("GET", key_path(name, "/public-key"), _one(PublicKey.from_json), params=params)


# --- cryptographic operations: one item's body --------------------------------


def encrypt_item(item: EncryptItem | bytes | str) -> dict[str, Any]:
    if not isinstance(item, EncryptItem):
        item = EncryptItem(_bytes(item))
    return _put({"plaintext": b64encode(_bytes(item.plaintext))}, context=_context(item.context))


def decrypt_item(item: DecryptItem | str, unsafe_allow_compromised: bool = False) -> dict[str, Any]:
    if not isinstance(item, DecryptItem):
        item = DecryptItem(item)
    body = _put({"ciphertext": item.ciphertext.strip()}, context=_context(item.context))
    if unsafe_allow_compromised:
        body["unsafe_allow_compromised"] = True
    return body


def reencrypt_item(item: ReencryptItem | str,
                   unsafe_allow_compromised: bool = False) -> dict[str, Any]:
    if not isinstance(item, ReencryptItem):
        item = ReencryptItem(item)
    body = _put({"ciphertext": item.ciphertext.strip()}, context=_context(item.context),
                destination_key=item.destination_key,
                destination_context=_context(item.destination_context))
    if unsafe_allow_compromised:
        body["unsafe_allow_compromised"] = True
    return body


def datakey_item(item: DataKeyItem) -> dict[str, Any]:
    return _put({"plaintext": item.plaintext}, bits=item.bits, context=_context(item.context))


def sign_item(item: SignItem | bytes | str) -> dict[str, Any]:
    if not isinstance(item, SignItem):
        item = SignItem(message=_bytes(item))
    if (item.message is None) == (item.digest is None):
        raise ValueError("sign takes exactly one of message or digest")
    if item.digest is not None and not item.hash:
        raise ValueError("a digest needs its hash (sha256, sha384 or sha512)")
    return _put({}, message=None if item.message is None else b64encode(_bytes(item.message)),
                digest=None if item.digest is None else b64encode(item.digest), hash=item.hash)


def verify_item(item: VerifyItem) -> dict[str, Any]:
    if (item.message is None) == (item.digest is None):
        raise ValueError("verify takes exactly one of message or digest")
    return _put({"signature": b64encode(item.signature)},
                message=None if item.message is None else b64encode(_bytes(item.message)),
                digest=None if item.digest is None else b64encode(item.digest),
                hash=item.hash, key_version=item.key_version)


def mac_item(message: bytes | str) -> dict[str, Any]:
    return {"message": b64encode(_bytes(message))}


def verify_mac_item(item: VerifyMacItem) -> dict[str, Any]:
    return _put({"message": b64encode(_bytes(item.message)), "mac": b64encode(item.mac)},
                key_version=item.key_version)


def decapsulate_item(item: DecapsulateItem | bytes) -> dict[str, Any]:
    if not isinstance(item, DecapsulateItem):
        item = DecapsulateItem(item)
    return _put({"encapsulation": b64encode(item.encapsulation)},
                key_version=item.key_version, context=_context(item.context))


# --- cryptographic operations: calls -----------------------------------------


def encrypt(key: str, plaintext: bytes | str,
            context: Context | None = None) -> Call[EncryptResult]:
    return Call("POST", key_path(key, "/encrypt"), _one(EncryptResult.from_json),
                json=encrypt_item(EncryptItem(_bytes(plaintext), context)))


def encrypt_batch(key: str, items: Sequence[EncryptItem | bytes | str]
                  ) -> Call[BatchResult[EncryptResult]]:
    return Call("POST", key_path(key, "/encrypt"), _batch(EncryptResult.from_json),
                json={"batch": [encrypt_item(i) for i in items]})


def _decrypt_path(key: str | None) -> str:
    return "/v1/decrypt" if key is None else key_path(key, "/decrypt")


def decrypt(ciphertext: str, context: Context | None = None, *, key: str | None = None,
            unsafe_allow_compromised: bool = False) -> Call[DecryptResult]:
    return Call("POST", _decrypt_path(key), _one(DecryptResult.from_json),
                json=decrypt_item(DecryptItem(ciphertext, context), unsafe_allow_compromised))


def decrypt_batch(items: Sequence[DecryptItem | str], *, key: str | None = None,
                  unsafe_allow_compromised: bool = False) -> Call[BatchResult[DecryptResult]]:
    return Call("POST", _decrypt_path(key), _batch(DecryptResult.from_json),
                json={"batch": [decrypt_item(i, unsafe_allow_compromised) for i in items]})


def reencrypt(ciphertext: str, context: Context | None = None, *,
              destination_key: str | None = None, destination_context: Context | None = None,
              unsafe_allow_compromised: bool = False) -> Call[EncryptResult]:
    item = ReencryptItem(ciphertext, context, destination_key, destination_context)
    return Call("POST", "/v1/reencrypt", _one(EncryptResult.from_json),
                json=reencrypt_item(item, unsafe_allow_compromised))


def reencrypt_batch(items: Sequence[ReencryptItem | str], *,
                    unsafe_allow_compromised: bool = False) -> Call[BatchResult[EncryptResult]]:
    return Call("POST", "/v1/reencrypt", _batch(EncryptResult.from_json),
                json={"batch": [reencrypt_item(i, unsafe_allow_compromised) for i in items]})


def datakey(key: str, *, bits: int | None = None, context: Context | None = None,
            plaintext: bool = True) -> Call[DataKey]:
    return Call("POST", key_path(key, "/datakey"), _one(DataKey.from_json),
                json=datakey_item(DataKeyItem(bits, context, plaintext)))


def datakey_batch(key: str, items: Sequence[DataKeyItem]) -> Call[BatchResult[DataKey]]:
    return Call("POST", key_path(key, "/datakey"), _batch(DataKey.from_json),
                json={"batch": [datakey_item(i) for i in items]})


def sign(key: str, message: bytes | str | None = None, *, digest: bytes | None = None,
         hash: str | None = None) -> Call[Signature]:
    item = SignItem(None if message is None else _bytes(message), digest, hash)
    return Call("POST", key_path(key, "/sign"), _one(Signature.from_json), json=sign_item(item))


def sign_batch(key: str, items: Sequence[SignItem | bytes | str]) -> Call[BatchResult[Signature]]:
    return Call("POST", key_path(key, "/sign"), _batch(Signature.from_json),
                json={"batch": [sign_item(i) for i in items]})


def verify(key: str, signature: bytes, message: bytes | str | None = None, *,
           digest: bytes | None = None, hash: str | None = None,
           key_version: int | None = None) -> Call[Verification]:
    item = VerifyItem(signature, None if message is None else _bytes(message), digest, hash,
                      key_version)
    return Call("POST", key_path(key, "/verify"), _one(Verification.from_json),
                json=verify_item(item))


def verify_batch(key: str, items: Sequence[VerifyItem]) -> Call[BatchResult[Verification]]:
    return Call("POST", key_path(key, "/verify"), _batch(Verification.from_json),
                json={"batch": [verify_item(i) for i in items]})


def mac(key: str, message: bytes | str) -> Call[Mac]:
    return Call("POST", key_path(key, "/mac"), _one(Mac.from_json), json=mac_item(message))


def mac_batch(key: str, messages: Sequence[bytes | str]) -> Call[BatchResult[Mac]]:
    return Call("POST", key_path(key, "/mac"), _batch(Mac.from_json),
                json={"batch": [mac_item(m) for m in messages]})


def verify_mac(key: str, message: bytes | str, mac: bytes, *,
               key_version: int | None = None) -> Call[Verification]:
    item = VerifyMacItem(_bytes(message), mac, key_version)
    return Call("POST", key_path(key, "/verify-mac"), _one(Verification.from_json),
                json=verify_mac_item(item))


def verify_mac_batch(key: str, items: Sequence[VerifyMacItem]
                     ) -> Call[BatchResult[Verification]]:
    return Call("POST", key_path(key, "/verify-mac"), _batch(Verification.from_json),
                json={"batch": [verify_mac_item(i) for i in items]})


def decapsulate(key: str, encapsulation: bytes, *, key_version: int | None = None,
                context: Context | None = None) -> Call[SharedSecret]:
    return Call("POST", key_path(key, "/decapsulate"), _one(SharedSecret.from_json),
                json=decapsulate_item(DecapsulateItem(encapsulation, key_version, context)))


def decapsulate_batch(key: str, items: Sequence[DecapsulateItem | bytes]
                      ) -> Call[BatchResult[SharedSecret]]:
    return Call("POST", key_path(key, "/decapsulate"), _batch(SharedSecret.from_json),
                json={"batch": [decapsulate_item(i) for i in items]})


def random(n: int) -> Call[bytes]:
    return Call("POST", "/v1/random", lambda body, _rid: b64decode(str(body["random"])),
                json={"bytes": n})


# --- identity, policy, audit ----------------------------------------------------


def create_token(policies: Sequence[str], *, ttl: Duration | None = None,
                 name: str | None = None, approval_id: str | None = None) -> Call[Token]:
    body = _put({"policies": list(policies)}, ttl=None if ttl is None else _duration(ttl),
                name=name, approval_id=approval_id)
    return Call("POST", "/v1/auth/tokens", _one(Token.from_json), json=body)


def token_self() -> Call[TokenInfo]:
    return Call("GET", "/v1/auth/tokens/self", _one(TokenInfo.from_json))


def revoke_token(accessor: str) -> Call[None]:
    return Call("DELETE", f"/v1/auth/tokens/{_segment(accessor, 'accessor')}", _nothing)


def put_policy(name: str, rules: Sequence[PolicyRule | Mapping[str, Any]], *,
               approval_id: str | None = None) -> Call[Policy]:
    def parse(body: Any, _rid: str | None) -> Policy:
        if isinstance(body, Mapping) and "rules" in body:
            return Policy.from_json(body, name)
        return Policy(name, tuple(PolicyRule.from_json(r) for r in rules_to_json(rules)))

    return Call("PUT", f"/v1/policies/{_segment(name, 'policy name')}", parse,
                json=_put({"rules": rules_to_json(rules)}, approval_id=approval_id))


def get_policy(name: str) -> Call[Policy]:
    return Call("GET", f"/v1/policies/{_segment(name, 'policy name')}",
                lambda body, _rid: Policy.from_json(body, name))


def list_policies() -> Call[list[Policy]]:
    return Call("GET", "/v1/policies",
                lambda body, _rid: [Policy.from_json(p) for p in body.get("policies") or ()])


def delete_policy(name: str, *, approval_id: str | None = None) -> Call[None]:
    params = () if approval_id is None else (("approval_id", approval_id),)
    return Call("DELETE", f"/v1/policies/{_segment(name, 'policy name')}", _nothing,
                params=params)


def simulate_policy(operation: str, key: str | None = None, *,
                    token_accessor: str | None = None, policies: Sequence[str] | None = None,
                    context: Context | None = None, spec: str | None = None,
                    client: str | None = None) -> Call[PolicyDecision]:
    if (token_accessor is None) == (policies is None):
        raise ValueError("give exactly one of token_accessor or policies")
    body = _put({"operation": operation}, key=key, token_accessor=token_accessor,
                policies=None if policies is None else list(policies),
                context=_context(context), spec=spec, client=client)
    return Call("POST", "/v1/policies/simulate", _one(PolicyDecision.from_json), json=body)


def list_audit(*, key: str | None = None, identity: str | None = None,
               operation: str | None = None, outcome: str | None = None,
               since: datetime | str | None = None, until: datetime | str | None = None,
               limit: int | None = None, page_token: str | None = None,
               context: str | None = None) -> Call[AuditPage]:
    params = tuple(
        (k, str(v)) for k, v in (
            ("key", key), ("identity", identity), ("operation", operation),
            ("outcome", outcome), ("context", context),
            ("since", None if since is None else _time(since)),
            ("until", None if until is None else _time(until)), ("limit", limit),
            ("page_token", page_token))
        if v is not None
    )
    return Call("GET", "/v1/audit", _one(AuditPage.from_json), params=params)


def verify_audit(checkpoints: Sequence[Mapping[str, Any]] = ()) -> Call[AuditVerification]:
    return Call("POST", "/v1/audit/verify", _one(AuditVerification.from_json),
                json={"checkpoints": [dict(c) for c in checkpoints]} if checkpoints else {})


def audit_public_key() -> Call[dict[str, Any]]:
    return Call("GET", "/v1/audit/public-key", lambda body, _rid: dict(body))


def audit_hash(value: str) -> Call[str]:
    return Call("POST", "/v1/audit/hash", lambda body, _rid: str(body["hash"]),
                json={"value": value})


def audit_checkpoint() -> Call[dict[str, Any]]:
    return Call("POST", "/v1/audit/checkpoint", lambda body, _rid: dict(body), json={})


def export_audit() -> Call[None]:
    """The export's request; the clients stream its body instead of parsing it."""
    return Call("GET", "/v1/audit/export", _nothing)


def backup(segment_size: int | None = None) -> Call[None]:
    """The backup's request (``sys:backup``); the clients stream the file instead of parsing it."""
    if segment_size is not None and (isinstance(segment_size, bool)
                                     or not isinstance(segment_size, int)):
        raise ValueError("segment_size must be an integer")
    params = () if segment_size is None else (("segment_size", str(segment_size)),)
    return Call("GET", "/v1/sys/backup", _nothing, params=params)


REPORTS = ("inventory", "compliance")


def report(kind: str) -> Call[dict[str, Any]]:
    if kind not in REPORTS:
        raise ValueError("report kind must be 'inventory' or 'compliance'")
    return Call("GET", f"/v1/reports/{kind}", lambda body, _rid: dict(body or {}))


def report_html(kind: str) -> Call[str]:
    if kind not in REPORTS:
        raise ValueError("report kind must be 'inventory' or 'compliance'")
    return Call("GET", f"/v1/reports/{kind}", lambda text, _rid: str(text),
                params=(("format", "html"),), text=True)


def metrics() -> Call[str]:
    return Call("GET", "/metrics", lambda text, _rid: str(text), text=True)
