"""The AWS KMS front end: ``POST /`` with ``X-Amz-Target: TrentService.<Operation>``.

Every request takes the same steps as a native one (``Runner.execute``), in
AWS's order: the body is read (within the running limit), the signature
verified (``sigv4``: the access key's secret, or any well-formed signature in
``keyquorum dev --aws-any-credentials``), then the target and the fields are
checked against the KMS model, the key resolved (KeyId, ARN or alias), and the
operation run with its native twin's permission, one service call and the
audit record. A refusal before the pipeline is recorded as the pipeline would
(an authenticated caller's is written, an anonymous one's counted).

Answers are ``application/x-amz-json-1.1``; errors ``{"__type", "message"}`` with
AWS's exception names and status (``errors.aws_error``), so SDK retries and
error handling behave as against AWS. Unknown targets and operations keyquorum
does not offer answer ``UnsupportedOperationException``, never 404 or 500.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool

from keyquorum.api.errors import translate
from keyquorum.api.foreign import Receive, Scope, Send
from keyquorum.api.front import read_body
from keyquorum.api.services import Services
from keyquorum.auth.identity import ROOT_POLICY_NAME, Identity
from keyquorum.errors import AuditUnavailable, KeyquorumError
from keyquorum.kms import sigv4
from keyquorum.kms.call import KmsCall, check_shape
from keyquorum.kms.errors import UnrecognizedClient, aws_error, serialization, unsupported
from keyquorum.kms.ids import Names
from keyquorum.kms.operations import OPERATIONS
from keyquorum.service.context import RequestContext

log = logging.getLogger("keyquorum.kms")
TARGET_PREFIX = "TrentService."
MAX_KMS_BODY = 64 * 1024
"""The largest KMS request body read, before the signature is checked (AWS's largest
fields, 6 KiB blobs and an 8 KiB context, fit several times over)."""
ANY_CREDENTIALS = Identity(accessor="aws-any-credentials", name="aws-any-credentials",
                           policies=(ROOT_POLICY_NAME,), expires_at=None, created_at=0.0)
"""Who every well-formed signature is in ``keyquorum dev --aws-any-credentials``."""
_JSON = b"application/x-amz-json-1.1"


class KmsFront:
    """A ``ForeignFront`` for AWS KMS clients (boto3, the aws CLI, the Encryption SDK)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        settings = services.core.settings
        self.account = getattr(settings, "aws_account_id", "000000000000")
        self.regions = tuple(getattr(settings, "aws_regions", ()))
        self.any_credentials = bool(getattr(settings, "aws_any_credentials", False))

    def claims(self, scope: Scope) -> bool:
        return scope["path"] == "/" and scope["method"] == "POST"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        request_id = str(uuid.uuid4())
        ctx = RequestContext(request_id=request_id, client=client[0] if client else None)
        headers = {name.decode("latin-1").lower(): value.decode("latin-1")
                   for name, value in scope["headers"]}
        target = headers.get("x-amz-target", "")
        action = target[len(TARGET_PREFIX):] if target.startswith(TARGET_PREFIX) else ""
        ctx.detail = {"api": "aws-kms", "action": (action or target)[:64]}
        try:
            status, payload = 200, await self._answer(scope, receive, headers, ctx, action)
        except Exception as exc:
            status, payload = await self._refusal(ctx, action, exc)
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", _JSON), (b"content-length", str(len(payload)).encode()),
            (b"x-amzn-requestid", request_id.encode())]})
        await send({"type": "http.response.body", "body": payload})

    async def _answer(self, scope: Scope, receive: Receive, headers: dict[str, str],
                      ctx: RequestContext, action: str) -> bytes:
        core = self.services.core
        if core.sealed:  # DependencyTimeoutException; no access key secret stays in memory
            self.services.access_keys.clear()
            core.barrier()
        # The signature's shape, scope and time first: a request that cannot be anyone's
        # is refused before its body is read.
        claims = sigv4.parse(headers, regions=self.regions)
        ctx.detail["access_key"] = claims.access_key_id
        body = await read_body(receive, MAX_KMS_BODY)
        ctx.identity = await self._identify(claims, scope, headers, body)
        handler = OPERATIONS.get(action)
        if handler is None:
            raise unsupported(f"{headers.get('x-amz-target', '')[:128]!s} is not an operation "
                              "keyquorum's KMS API offers (docs/AWS-KMS.md lists them)")
        fields = _json_object(body)
        check_shape(action, fields)
        call = KmsCall(self.services, ctx, ctx.identity, action, fields,
                       Names(region=claims.region, account=self.account),
                       approval_id=headers.get("x-keyquorum-approval-id"))
        answer = await handler(call)
        return orjson.dumps(answer)

    async def _identify(self, claims: sigv4.SignedRequest, scope: Scope,
                        headers: dict[str, str], body: bytes) -> Identity:
        if self.any_credentials:  # keyquorum dev --aws-any-credentials only
            return ANY_CREDENTIALS
        store = self.services.access_keys
        found = store.cached(claims.access_key_id)
        if found is None:
            try:
                found = await run_in_threadpool(store.lookup, claims.access_key_id)
            except KeyquorumError as exc:
                if exc.code == "sealed":
                    raise
                raise UnrecognizedClient("The security token included in the request is "
                                         "invalid.") from None
        sigv4.verify(claims, found.secret, method=scope["method"], path=scope["path"],
                     query=scope.get("query_string", b"").decode("latin-1"),
                     headers=headers, body=body)
        return found.identity

    async def _refusal(self, ctx: RequestContext, action: str,
                       exc: BaseException) -> tuple[int, bytes]:
        error = translate(exc)
        if error is None:
            log.error("unexpected %s while serving a KMS request", type(exc).__name__)
            error = KeyquorumError("internal error")
        if not (ctx.recorded or ctx.audited):  # refused before the pipeline ran
            try:
                await self.services.runner.record_refusal(ctx, None, _operation(action),
                                                          None, error)
            except AuditUnavailable as unavailable:
                error = unavailable
        status, aws_type, message = aws_error(error)
        return status, orjson.dumps({"__type": aws_type, "message": message})


def _json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        fields = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise serialization("the request body is not valid JSON") from None
    if not isinstance(fields, dict):
        raise serialization("the request body must be a JSON object")
    return fields


def _operation(action: str) -> str:
    """The audit operation of a refused request (the native twin's name when known)."""
    handler = OPERATIONS.get(action)
    return getattr(handler, "operation", "kms") if handler is not None else "kms"
