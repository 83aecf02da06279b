"""SigV4 verification in isolation, on requests botocore signed: the same request is
accepted within the skew window and refused as a replay outside it; any change to what
was signed is refused; the comparison uses hmac.compare_digest."""

from __future__ import annotations

import time
from typing import Any

import pytest
from tests.kms.signing import signed_headers

from keyquorum.kms import sigv4
from keyquorum.kms.errors import IncompleteSignature, InvalidSignature, MissingAuthenticationToken

KEY = {"access_key_id": "KQAKTESTTESTTESTTEST", "secret_access_key": "k" * 40}
BODY = b'{"KeyId": "alias/x", "Plaintext": "eA=="}'


def _request(**options: Any) -> dict[str, str]:
    raw = signed_headers("http://127.0.0.1:8200", KEY, "TrentService.Encrypt", BODY, **options)
    headers = {name.lower(): value for name, value in raw.items()}
    headers["host"] = "127.0.0.1:8200"
    return headers


def _verify(headers: dict[str, str], body: bytes = BODY, now: float | None = None,
            secret: str = KEY["secret_access_key"]) -> None:
    claims = sigv4.parse(headers, now=now)
    sigv4.verify(claims, secret, method="POST", path="/", query="", headers=headers,
                 body=body)


def test_a_botocore_signed_request_verifies() -> None:
    _verify(_request())


def test_the_same_request_replayed_outside_the_window_is_refused() -> None:
    headers = _request()
    _verify(headers, now=time.time() + 299)  # a retry inside the window: as AWS
    with pytest.raises(InvalidSignature, match="expired"):
        _verify(headers, now=time.time() + sigv4.MAX_SKEW + 2)


@pytest.mark.parametrize("change", ["body", "target", "secret", "region", "date"])
def test_any_change_to_what_was_signed_is_refused(change: str) -> None:
    headers = _request()
    body = BODY
    secret = KEY["secret_access_key"]
    if change == "body":
        body = BODY.replace(b"eA==", b"eQ==")
    elif change == "target":
        headers["x-amz-target"] = "TrentService.Decrypt"
    elif change == "secret":
        secret = "j" * 40
    elif change == "region":
        headers["authorization"] = headers["authorization"].replace("/eu-west-1/",
                                                                    "/us-east-1/")
    else:
        stamp = headers["x-amz-date"]
        headers["x-amz-date"] = stamp[:13] + ("00" if stamp[13:15] != "00" else "01") + "Z"
    with pytest.raises(InvalidSignature):
        _verify(headers, body=body, secret=secret)


def test_regions_restrict_when_configured() -> None:
    headers = _request(region="eu-west-1")
    sigv4.parse(headers, regions=("eu-west-1",))
    with pytest.raises(InvalidSignature, match="region"):
        sigv4.parse(headers, regions=("us-east-1",))


def test_malformed_authorization_headers() -> None:
    headers = _request()
    with pytest.raises(MissingAuthenticationToken):
        sigv4.parse({k: v for k, v in headers.items() if k != "authorization"})
    for broken in ("AWS4-HMAC-SHA1 Credential=x", "AWS4-HMAC-SHA256 Credential=a/b",
                   headers["authorization"].replace("Signature=", "Signature=zz"),
                   headers["authorization"].replace(";x-amz-date", "")):
        with pytest.raises((IncompleteSignature, InvalidSignature)):
            sigv4.parse({**headers, "authorization": broken})


def test_a_declared_payload_hash_must_match_the_body() -> None:
    headers = _request()
    headers["x-amz-content-sha256"] = "0" * 64
    with pytest.raises((IncompleteSignature, InvalidSignature)):
        _verify(headers)
