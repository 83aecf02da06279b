"""Every request goes through here: authenticate, run, audit, then answer.

The audit record (ok, denied or error) is durably written before the answer
leaves; if it cannot be, the client gets ``audit_unavailable`` instead of the
result (fail closed). Lifecycle changes write their own record inside their
transaction (``ctx.audited``), so the change and its record land together.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import Request
from starlette.concurrency import run_in_threadpool

from keyquorum.api.errors import translate
from keyquorum.audit.keys import AuditKeys
from keyquorum.audit.records import AuditRecord
from keyquorum.errors import (
    ApprovalRequired,
    AuditUnavailable,
    Forbidden,
    InvalidRequest,
    KeyquorumError,
    Sealed,
    TooLarge,
    Unauthenticated,
)
from keyquorum.service.context import RequestContext, next_request_id
from keyquorum.service.core import Core
from keyquorum.service.operations import ItemResult

log = logging.getLogger("keyquorum.api")
_DENIALS = (Unauthenticated, Forbidden, ApprovalRequired)


def new_context(request: Request) -> RequestContext:
    request_id = getattr(request.state, "request_id", None) or next_request_id()
    request.state.request_id = request_id
    client = request.client.host if request.client else None
    ctx = RequestContext(request_id=request_id, client=client)
    request.state.ctx = ctx  # the error handlers audit a request no runner recorded
    return ctx


def bearer_token(header: str | None) -> str:
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("missing bearer token")
    return token.strip()


async def read_json(request: Request, core: Core, *, allow_empty: bool = False) -> dict[str, Any]:
    limit = core.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"request body exceeds {limit} bytes")
    raw = await request.body()
    if len(raw) > limit:
        raise TooLarge(f"request body exceeds {limit} bytes")
    return parse_json_body(raw, allow_empty=allow_empty)


def parse_json_body(raw: bytes, *, allow_empty: bool = False) -> dict[str, Any]:
    """The body as a JSON object, or ``InvalidRequest`` saying what is wrong with it."""
    if not raw.strip():
        if allow_empty:
            return {}
        raise InvalidRequest("a JSON object body is required")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest("the body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    return body


def _as_domain_error(exc: BaseException) -> KeyquorumError:
    """The error to audit and answer; an unexpected one is logged (type only) as internal."""
    error = translate(exc)
    if error is None:
        log.error("unexpected %s while serving a request", type(exc).__name__)
        error = KeyquorumError("internal error")
    return error


class _BatchTally:
    """One audit record per (key, version, outcome, error, detail, context) of a batch.

    Every item is still accounted for — who, which key and version, how it ended,
    and how many — without writing a hundred near-identical rows per request. Items
    are counted under a plain tuple and a record is built once per group, not per
    item: on a 100-item batch that is most of the audit's cost.
    """

    __slots__ = ("groups",)

    def __init__(self) -> None:
        self.groups: dict[tuple[Any, ...], list[Any]] = {}

    def add(self, ctx: RequestContext, key: str | None, version: int | None,
            error: KeyquorumError | None) -> None:
        key, version = _subject(ctx, key, version, error)
        group = (key, version, error.code if error else None,
                 tuple(sorted(ctx.detail.items())) if ctx.detail else (),
                 tuple(sorted(ctx.context.items())) if ctx.context else ())
        entry = self.groups.get(group)
        if entry is None:
            self.groups[group] = [1, error, dict(ctx.detail), ctx.context]
        else:
            entry[0] += 1

    def records(self, ctx: RequestContext, operation: str, now: float, batch_size: int,
                audit_keys: AuditKeys | None) -> list[AuditRecord]:
        return [
            _make_record(ctx, operation, key, version, error, now, audit_keys,
                         {**detail, "items": str(count), "batch_size": str(batch_size)},
                         context)
            for (key, version, _code, _detail, _context), (count, error, detail, context)
            in self.groups.items()]


def _subject(ctx: RequestContext, key: str | None, version: int | None,
             error: KeyquorumError | None) -> tuple[str | None, int | None]:
    """The key and version a record names.

    A refused request names the key (and version) the operation found on its own
    before it was refused, e.g. from a ciphertext's header: a refused decrypt names
    the version it hit.
    """
    if error is not None and (key is None or key == ctx.key) and version is None:
        return key or ctx.key, ctx.key_version
    return key, version


def _make_record(ctx: RequestContext, operation: str, key: str | None, version: int | None,
                 error: KeyquorumError | None, now: float, audit_keys: AuditKeys | None,
                 detail: dict[str, str] | None, context: dict[str, str] | None
                 ) -> AuditRecord:
    outcome = "ok" if error is None else ("denied" if isinstance(error, _DENIALS) else "error")
    # The context may carry personal data: only its HMAC is stored. Sealed (no audit
    # key), no operation ran, so there is nothing to hash and nothing is kept.
    hashed = audit_keys.hash_context(context) if context and audit_keys else None
    return AuditRecord(time=now, request_id=ctx.request_id, identity=ctx.accessor,
                       operation=operation, key=key, key_version=version, outcome=outcome,
                       error_code=error.code if error else None, client=ctx.client,
                       detail=dict(detail) if detail else None, context=hashed)


class Runner:
    def __init__(self, core: Core) -> None:
        self.core = core

    def _record(self, ctx: RequestContext, operation: str, key: str | None,
                version: int | None, error: KeyquorumError | None, now: float) -> AuditRecord:
        key, version = _subject(ctx, key, version, error)
        return _make_record(ctx, operation, key, version, error, now,
                            self.core.audit_trail.keys_or_none, ctx.detail, ctx.context)

    def authenticate(self, authorization: str | None, ctx: RequestContext) -> None:
        """Resolve the bearer token; while sealed nothing but the sys ceremonies answers."""
        if self.core.sealed:
            raise Sealed()
        ctx.identity = self.core.tokens.authenticate(bearer_token(authorization))

    async def record_refusal(self, ctx: RequestContext, authorization: str | None,
                             operation: str, key: str | None, error: KeyquorumError) -> None:
        """Audit a request refused before any operation ran (bad body, unknown path, ...).

        The identity is filled in when the token is valid, so a malformed request
        is still attributed to whoever sent it.
        """
        if ctx.recorded or ctx.audited:
            return
        if ctx.identity is None and authorization is not None:
            with contextlib.suppress(KeyquorumError):
                ctx.identity = self.core.tokens.authenticate(bearer_token(authorization))
        await self._audit(
            [self._record(ctx, operation, key, None, error, self.core.clock.now())], ctx)

    async def _audit(self, records: list[AuditRecord], ctx: RequestContext | None = None,
                     started: float | None = None) -> None:
        if ctx is not None:
            ctx.recorded = True
        try:
            await self.core.audit.write_many(records)
        except AuditUnavailable:
            raise
        except Exception as exc:  # any failure to record is a failure of the operation
            raise AuditUnavailable() from exc
        self.core.metrics.observe(records, started)  # counters for /metrics (dict updates)

    async def run(self, request: Request, operation: str, key: str | None,
                  work: Callable[[RequestContext], Any], *, authenticate: bool = True,
                  in_thread: bool = False) -> Any:
        """Run one audited operation for a FastAPI route."""
        return await self.execute(new_context(request), request.headers.get("authorization"),
                                  operation, key, work, authenticate=authenticate,
                                  in_thread=in_thread)

    async def execute(self, ctx: RequestContext, authorization: str | None, operation: str,
                      key: str | None, work: Callable[[RequestContext], Any], *,
                      authenticate: bool = True, in_thread: bool = False) -> Any:
        """Run one audited operation; ``work`` returns an ItemResult or a plain answer."""
        started = time.perf_counter()
        version: int | None = None
        try:
            if authenticate:
                self.authenticate(authorization, ctx)
            result = await run_in_threadpool(work, ctx) if in_thread else work(ctx)
        except Exception as exc:
            error = _as_domain_error(exc)
            await self._audit(
                [self._record(ctx, operation, key, None, error, self.core.clock.now())],
                ctx, started)
            raise error from exc
        if isinstance(result, ItemResult):
            key, version, answer = result.key or key, result.key_version, result.answer
        else:
            answer = result
        record = self._record(ctx, operation, key, version, None, self.core.clock.now())
        if ctx.audited:  # the change wrote its record in its own transaction: count it only
            self.core.metrics.observe([record], started)
        else:
            await self._audit([record], ctx, started)
        return answer

    async def run_items(self, ctx: RequestContext, authorization: str | None, operation: str,
                        key: str | None, body: dict[str, Any],
                        work: Callable[[RequestContext, object], ItemResult]) -> dict[str, Any]:
        """A crypto operation, single (``body`` is the item) or batched (``{"batch": [...]}``)."""
        if "batch" not in body:
            return await self.execute(  # type: ignore[no-any-return]
                ctx, authorization, operation, key, lambda c: work(c, body))
        started = time.perf_counter()
        try:
            self.authenticate(authorization, ctx)
            items = body["batch"]
            if len(body) != 1 or not isinstance(items, list) or not items:
                raise InvalidRequest("batch must be the only field: a non-empty list of items")
            if len(items) > self.core.settings.max_batch_items:
                raise TooLarge(f"a batch holds at most {self.core.settings.max_batch_items} items")
        except KeyquorumError as refusal:
            await self._audit([self._record(ctx, operation, key, None, refusal,
                                       self.core.clock.now())], ctx, started)
            raise
        results: list[dict[str, Any]] = []
        tally = _BatchTally()
        now = self.core.clock.now()
        for item in items:
            ctx.detail = {}
            ctx.key = ctx.key_version = ctx.context = None
            try:
                outcome = work(ctx, item)
            except Exception as exc:
                failure = _as_domain_error(exc)
                results.append({"error": {"code": failure.code, "message": failure.message}})
                tally.add(ctx, key, None, failure)
                continue
            results.append(outcome.answer)
            tally.add(ctx, outcome.key or key, outcome.key_version, None)
        records = tally.records(ctx, operation, now, len(items),
                                self.core.audit_trail.keys_or_none)
        await self._audit(records, ctx, started)
        return {"results": results}
