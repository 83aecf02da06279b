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
    Custodian,
    CustodianProof,
    DeletionScheduled,
    Health,
    InitResult,
    Key,
    KeyPage,
    PublicKey,
    Seal,
    SealStatus,
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
         force: bool = False, custodian_keys: Mapping[str, str] | None = None
         ) -> Call[InitResult]:
    body = _put({"shares": shares, "threshold": threshold},
                custodians=None if custodians is None else list(custodians),
                force=True if force else None,
                custodian_keys=dict(custodian_keys) if custodian_keys else None)
    return Call("POST", "/v1/sys/init", _one(InitResult.from_json), json=body, auth=False)


def seal_status() -> Call[SealStatus]:
    return Call("GET", "/v1/sys/seal-status", _one(SealStatus.from_json), auth=False)


def unseal(share: str) -> Call[SealStatus]:
    return Call("POST", "/v1/sys/unseal", _one(SealStatus.from_json),
                json={"share": share.strip()}, auth=False)


def unseal_reset(nonce: str | None = None) -> Call[SealStatus]:
    body: dict[str, Any] = {"reset": True, **({"nonce": nonce} if nonce else {})}
    return Call("POST", "/v1/sys/unseal", _one(SealStatus.from_json), json=body, auth=False)


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
