"""AWS Signature Version 4 verification for the KMS front.

The canonical request and the string to sign are botocore's own
(``botocore.auth.SigV4Auth``), the code every AWS SDK for Python signs with, so
what is verified here is what clients sign; only the header selection differs:
a verifier signs exactly the headers the client said it signed
(``SignedHeaders``), not the ones it happens to see.

What a request must show, else it is refused before any key is looked at:

- ``Authorization: AWS4-HMAC-SHA256 Credential=<id>/<date>/<region>/kms/aws4_request,
  SignedHeaders=..., Signature=<64 hex>``; service ``kms``; the region is any
  unless the config lists regions (``aws_regions``);
- ``X-Amz-Date`` within ``MAX_SKEW`` of the server's wall clock (not the test
  clock: clients sign with real time), and the credential's date its day;
- ``host``, ``x-amz-date`` and ``x-amz-target`` signed (the target is signed so a
  captured request cannot be re-sent as another operation), and
  ``x-amz-content-sha256`` too when present, where it must equal the body's hash;
- the signature, compared in constant time (``hmac.compare_digest``).

A replay of a signed request inside the skew window is accepted, as by AWS
(SDK retries re-send); outside it, it is refused as expired.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from calendar import timegm
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

from keyquorum.kms.errors import (
    IncompleteSignature,
    InvalidSignature,
    MissingAuthenticationToken,
)

MAX_SKEW = 300.0
"""Seconds a signature's time may be from the server's clock (AWS: 5 minutes)."""
SERVICE = "kms"
_ALGORITHM = "AWS4-HMAC-SHA256"
_REQUIRED_SIGNED = ("host", "x-amz-date", "x-amz-target")
_DATE = re.compile(r"\d{8}T\d{6}Z")
_REGION = re.compile(r"[a-z0-9-]{1,32}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_ACCESS_KEY = re.compile(r"[A-Za-z0-9+/=_.-]{1,128}")


@dataclass(frozen=True)
class SignedRequest:
    """What the ``Authorization`` header claims, parsed and shape-checked."""

    access_key_id: str
    date: str
    region: str
    signed_headers: tuple[str, ...]
    signature: str
    timestamp: str


def _fields(authorization: str) -> dict[str, str]:
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != _ALGORITHM:
        raise IncompleteSignature(f"the authorization header must use {_ALGORITHM}")
    found: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep or name in found:
            raise IncompleteSignature("the authorization header is malformed")
        found[name] = value
    missing = [n for n in ("Credential", "SignedHeaders", "Signature") if n not in found]
    if missing:
        raise IncompleteSignature("the authorization header lacks " + ", ".join(missing))
    return found


def parse(headers: dict[str, str], *, regions: Iterable[str] = (),
          now: float | None = None) -> SignedRequest:
    """The signature's claims, checked for shape, scope, signed headers and time."""
    authorization = headers.get("authorization")
    if authorization is None:
        raise MissingAuthenticationToken("Missing Authentication Token")
    found = _fields(authorization)
    parts = found["Credential"].split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise IncompleteSignature("the credential must be <id>/<date>/<region>/kms/aws4_request")
    access_key_id, date, region, service, _ = parts
    if not _ACCESS_KEY.fullmatch(access_key_id):
        raise IncompleteSignature("the credential's access key id is malformed")
    if service != SERVICE:
        raise InvalidSignature(f"Credential should be scoped to correct service: '{SERVICE}'.")
    allowed = tuple(regions)
    if not _REGION.fullmatch(region) or (allowed and region not in allowed):
        raise InvalidSignature("Credential should be scoped to a valid region.")
    signed = tuple(found["SignedHeaders"].split(";"))
    if list(signed) != sorted(set(signed)) or any(not h or h != h.lower() for h in signed):
        raise IncompleteSignature("SignedHeaders must be lower-case names, sorted, once each")
    for needed in (*_REQUIRED_SIGNED,
                   *(("x-amz-content-sha256",) if "x-amz-content-sha256" in headers else ())):
        if needed not in signed:
            raise IncompleteSignature(f"the header {needed} must be signed")
    missing = [name for name in signed if name not in headers]
    if missing:
        raise IncompleteSignature("signed headers are missing: " + ", ".join(missing))
    if not _SIGNATURE.fullmatch(found["Signature"]):
        raise IncompleteSignature("the signature must be 64 lower-case hex digits")
    timestamp = headers["x-amz-date"]
    if not _DATE.fullmatch(timestamp) or date != timestamp[:8]:
        raise IncompleteSignature("X-Amz-Date must be YYYYMMDDTHHMMSSZ of the credential's day")
    _check_time(timestamp, time.time() if now is None else now)
    return SignedRequest(access_key_id=access_key_id, date=date, region=region,
                         signed_headers=signed, signature=found["Signature"],
                         timestamp=timestamp)


def _check_time(timestamp: str, now: float) -> None:
    try:
        signed_at = timegm(time.strptime(timestamp, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        raise IncompleteSignature("X-Amz-Date is not a valid time") from None
    if signed_at < now - MAX_SKEW:
        raise InvalidSignature(f"Signature expired: {timestamp} is now earlier than the "
                               "server's time minus 5 minutes.")
    if signed_at > now + MAX_SKEW:
        raise InvalidSignature(f"Signature not yet current: {timestamp} is still later than "
                               "the server's time plus 5 minutes.")


class _Verifier(SigV4Auth):
    """botocore's signer, signing exactly the headers the client listed."""

    def __init__(self, secret: str, claims: SignedRequest) -> None:
        super().__init__(Credentials(claims.access_key_id, secret), SERVICE, claims.region)
        self._signed = claims.signed_headers

    def headers_to_sign(self, request: Any) -> HTTPHeaders:
        chosen = HTTPHeaders()
        for name in self._signed:
            chosen[name] = request.headers[name]
        return chosen


def verify(claims: SignedRequest, secret: str, *, method: str, path: str, query: str,
           headers: dict[str, str], body: bytes) -> None:
    """Recompute the signature with ``secret``; ``InvalidSignature`` unless it matches."""
    digest = hashlib.sha256(body).hexdigest()
    declared = headers.get("x-amz-content-sha256")
    if declared is not None and not hmac.compare_digest(declared, digest):
        raise InvalidSignature("The provided x-amz-content-sha256 header does not match "
                               "what was computed.")
    url = f"http://{headers['host']}{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, data=body,
                         headers={name: headers[name] for name in claims.signed_headers})
    request.context["timestamp"] = claims.timestamp
    signer = _Verifier(secret, claims)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, claims.signature):
        raise InvalidSignature("The request signature we calculated does not match the "
                               "signature you provided. Check your AWS Secret Access Key "
                               "and signing method.")


SecretOf = Callable[[str], str]
