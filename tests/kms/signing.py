"""Hand-signed KMS requests: what a broken or hostile client sends, signed with botocore."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def signed_headers(addr: str, key: dict[str, Any], target: str, body: bytes, *,
                   when: datetime | None = None, region: str = "eu-west-1",
                   service: str = "kms", secret: str | None = None) -> dict[str, str]:
    """Headers of ``POST /`` calling ``target``, signed at ``when`` (now by default)."""
    request = AWSRequest(method="POST", url=f"{addr}/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target})
    stamp = (when or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    request.headers["X-Amz-Date"] = stamp
    request.context["timestamp"] = stamp
    signer = SigV4Auth(Credentials(key["access_key_id"], secret or key["secret_access_key"]),
                       service, region)
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    signed = signer.signed_headers(signer.headers_to_sign(request))
    request.headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={signer.scope(request)}, SignedHeaders={signed}, "
        f"Signature={signature}")
    return dict(request.headers.items())


def post(addr: str, headers: dict[str, str], body: bytes) -> httpx.Response:
    return httpx.post(f"{addr}/", content=body, headers=headers, timeout=30)
