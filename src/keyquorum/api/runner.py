"""The request pipeline: every request takes the same steps in the same order.

    limited body → typed request → authenticate → validate names → authorize
        → one service call → serialize → audit (before the answer leaves)

Native routes (``Runner.run``), the crypto front (``Runner.run_crypto``) and any
later front end go through here, so authorization and audit cannot be skipped
by a route that forgot them: a route names the permission it needs and the
pipeline checks it, once, with ``Runner.authorize`` — the one function every
caller (routes, foreign APIs) uses. Services authorize only what they discover
themselves (the key a ciphertext names).

The audit record (ok, denied or error) is durably written before the answer
leaves; if it cannot be, the client gets ``audit_unavailable`` instead of the
result (fail closed). State changes write their own record inside their
transaction (``ctx.audited``), so the change and its record land together.
Refusals of requests nobody authenticated are counted per client
(``AnonymousRefusals``), not written one record each.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import orjson
from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from keyquorum.api import batches
from keyquorum.api.anonymous import AnonymousRefusals
from keyquorum.api.bodies import parse_body
from keyquorum.api.context import new_context
from keyquorum.api.crypto_routes import CryptoRoute
from keyquorum.api.errors import error_body, translate
from keyquorum.api.request_records import context_of, item_facts, make_record, override_fact
from keyquorum.api.serialize import crypto_json
from keyquorum.audit.records import AuditRecord
from keyquorum.auth.identity import Identity
from keyquorum.errors import (
    AuditUnavailable,
    InvalidRequest,
    KeyquorumError,
    Sealed,
    TooLarge,
    Unauthenticated,
)
from keyquorum.failure_log import describe_failure
from keyquorum.keys.names import validate_key_name
from keyquorum.service.context import RequestContext
from keyquorum.service.core import Core
from keyquorum.service.operations import CryptoOperations, WouldBlock, subject_of
from keyquorum.storage.errors import failure_kind

log = logging.getLogger("keyquorum.api")
T = TypeVar("T")

Needed = str | tuple[str, ...] | None
Permission = Needed | Callable[[Identity], Needed]
"""What a route needs: an operation (or several, all required), a function of the caller
(a token may always revoke itself), or None when the service authorizes what it
discovers (each key of a list, the approval a decision names)."""


@dataclass(frozen=True)
class Audited:
    """A route's answer with the key (and version) its audit record names, and the
    facts the call learned that the record should carry (a new token's accessor, the
    backup's id): returned as values, never left on the request context."""

    answer: Any
    key: str | None
    key_version: int | None
    detail: Mapping[str, str] | None = None


def bearer_token(header: str | None) -> str:
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("missing bearer token")
    return token.strip()


async def read_json(request: Request, core: Core, *, allow_empty: bool = False) -> dict[str, Any]:
    """The body as a JSON object. The front enforces the size limit as the body streams in
    (``front.LimitedReceive``), so nothing larger than the limit is ever buffered."""
    chunks: list[bytes] = []
    size = 0
    limit = core.settings.max_body_bytes
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"request body exceeds {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:  # cut off (body timeout) or gone: not the server's failure
        raise InvalidRequest("the client went away before the body ended") from None
    return parse_json_body(b"".join(chunks), allow_empty=allow_empty)


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
        log.error("unexpected %s while serving a request", describe_failure(exc))
        error = KeyquorumError("internal error")
    return error


class Runner:
    def __init__(self, core: Core, operations: CryptoOperations) -> None:
        self.core = core
        self.operations = operations
        self.anonymous = AnonymousRefusals(core.clock)

    # -- the pipeline's steps --------------------------------------------------------------

    def authenticate(self, authorization: str | None, ctx: RequestContext) -> Identity:
        """Resolve the bearer token; while sealed nothing but the sys ceremonies answers.
        Asks storage when the token is not cached: call it from a thread, or use
        ``authenticate_on_loop`` on the event loop."""
        if self.core.sealed:
            raise Sealed()
        ctx.identity = self.core.tokens.authenticate(bearer_token(authorization))
        return ctx.identity

    async def authenticate_on_loop(self, authorization: str | None,
                                   ctx: RequestContext) -> Identity:
        """``authenticate`` for the event loop: from the token cache, and from a thread
        only when storage must be asked (a slow or unreachable database then holds up
        this request, not every request on the loop)."""
        identity = self.cached_identity(authorization, ctx)
        if identity is None:
            identity = await self._identity_from_storage(authorization, ctx)
        return identity

    def cached_identity(self, authorization: str | None,
                        ctx: RequestContext) -> Identity | None:
        """The caller from the token cache (set on ``ctx``), None when storage must be
        asked; refusals raise as ``authenticate``'s do. The crypto front calls this
        first: a coroutine per request is measurable on its path."""
        if self.core.sealed:
            raise Sealed()
        ctx.identity = self.core.tokens.authenticate_cached(bearer_token(authorization))
        return ctx.identity

    async def _identity_from_storage(self, authorization: str | None,
                                     ctx: RequestContext) -> Identity:
        return await run_in_threadpool(self.authenticate, authorization, ctx)

    def authorize(self, ctx: RequestContext, permission: str, key: str | None = None, *,
                  spec: str | None = None, context: dict[str, str] | None = None) -> None:
        """The one authorization step: the key name is validated first (a name over 128
        characters or with a bad segment is refused before any policy sees it), then
        the caller's policies decide, with the request's facts for conditional rules."""
        if key is not None:
            validate_key_name(key)
        assert ctx.identity is not None
        self.core.authorizer.authorize(ctx.identity, permission, key, client=ctx.client,
                                       spec=spec, context=context)

    # -- audit -------------------------------------------------------------------------------

    def _record(self, ctx: RequestContext, operation: str, key: str | None,
                version: int | None, error: KeyquorumError | None, now: float,
                context: dict[str, str] | None = None,
                detail: Mapping[str, str] | None = None) -> AuditRecord:
        """The record of one request: the front's facts (``ctx.detail``, set before the
        call), then the route's and the call's own (``detail``), then what a refusal
        carries about itself (``error.audit_detail``)."""
        facts = {**ctx.detail, **detail} if detail else ctx.detail
        return make_record(ctx, operation, key, version, error, now,
                            self.core.audit_trail.keys_or_none, facts, context)

    async def record_refusal(self, ctx: RequestContext, authorization: str | None,
                             operation: str, key: str | None, error: KeyquorumError) -> None:
        """Audit a request refused before any operation ran (bad body, unknown path, ...).

        The identity is filled in when the token is valid, so a malformed request
        is still attributed to whoever sent it. A request nobody authenticated is
        counted against its client instead (``AnonymousRefusals``): an anonymous
        flood must not grow the audit log or the metrics by one entry per request.
        """
        if ctx.recorded or ctx.audited:
            return
        if ctx.identity is None and authorization is not None:
            try:
                await self.authenticate_on_loop(authorization, ctx)
            except KeyquorumError:
                pass  # sealed, or not a valid token: the refusal is counted against the client
            except Exception as exc:  # storage away: nobody can be named, so it is counted
                log.debug("could not look up the token of a refused request (%s)",
                            failure_kind(exc))
        if ctx.identity is None:
            await self._refused_anonymously(ctx, operation, error)
            return
        with contextlib.suppress(InvalidRequest):
            key = validate_key_name(key) if key is not None else None
        await self._audit(
            [self._record(ctx, operation, key, None, error, self.core.clock.now())], ctx)

    async def _refused_anonymously(self, ctx: RequestContext, operation: str,
                                   error: KeyquorumError) -> None:
        ctx.recorded = True
        summaries = self.anonymous.count(ctx.client, operation, error.code, ctx.request_id)
        if summaries:
            await self._audit(summaries, ctx)

    async def flush_anonymous(self, *, force: bool = False) -> None:
        """Write the counts of closed windows (a periodic task; every window at shutdown)."""
        summaries = self.anonymous.flush(force=force)
        if summaries:
            with contextlib.suppress(AuditUnavailable):
                await self._audit(summaries)

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

    async def _refuse(self, ctx: RequestContext, authorization: str | None, operation: str,
                      key: str | None, exc: BaseException, started: float, *,
                      token_required: bool = True) -> KeyquorumError:
        """Audit a request that failed. Failures of token routes that nobody authenticated
        are counted, not written; the token-less ceremonies (unseal, custodian proofs)
        ran their own checks, and each of their refusals is recorded."""
        error = _as_domain_error(exc)
        if ctx.identity is None and token_required:
            await self.record_refusal(ctx, authorization, operation, key, error)
            return error
        subject = subject_of(error)
        version = None
        if subject is not None:
            key, version = subject
        else:
            with contextlib.suppress(InvalidRequest):
                key = validate_key_name(key) if key is not None else None
        await self._audit(
            [self._record(ctx, operation, key, version, error, self.core.clock.now())],
            ctx, started)
        return error

    # -- native routes -----------------------------------------------------------------------

    async def run(self, request: Request, operation: str, key: str | None,
                  work: Callable[[RequestContext], T], *, permission: Permission,
                  authenticate: bool = True, in_thread: bool = False,
                  spec: str | None = None, detail: Mapping[str, str] | None = None) -> Any:
        """Run one audited operation for a FastAPI route.

        ``permission`` is checked on ``key`` after authentication and before
        ``work``; ``work`` returns the answer, or ``Audited`` to name a key (and
        facts) the record should carry that the route did not know. ``detail``
        holds the request's own facts (a revoke's reason, the sink named in the
        path): they go on the record whether the call succeeds or is refused.
        """
        authorization = request.headers.get("authorization")
        return await self.execute(
            new_context(request), operation, key, work, permission=permission,
            credential=(partial(self.authenticate_on_loop, authorization) if authenticate
                        else None),
            authorization=authorization, in_thread=in_thread, spec=spec, detail=detail)

    async def execute(self, ctx: RequestContext, operation: str, key: str | None,
                      work: Callable[[RequestContext], T], *, permission: Permission,
                      credential: Callable[[RequestContext], Identity | Awaitable[Identity]] | None,
                      authorization: str | None = None, in_thread: bool = False,
                      spec: str | None = None,
                      detail: Mapping[str, str] | None = None) -> Any:
        """The pipeline after the body was typed, for any front end.

        ``credential`` finds the caller (a bearer token, a SigV4 signature, an
        ``X-Vault-Token``) and sets ``ctx.identity``; ``None`` only for the
        token-less ceremonies, which check their own proofs. ``detail`` is added to
        the audit record (a foreign front names its protocol and action there).
        Raises the domain error, already audited, when anything is refused.
        """
        started = time.perf_counter()
        if detail:  # the request's own facts, for every record it leads to (in-transaction too)
            ctx.detail = {**ctx.detail, **detail}
        version: int | None = None
        try:
            if credential is not None:
                found = credential(ctx)
                identity = await found if inspect.isawaitable(found) else found
                ctx.identity = identity
                needed = permission(identity) if callable(permission) else permission
                if key is not None:
                    validate_key_name(key)
                for operation_needed in (needed,) if isinstance(needed, str) else needed or ():
                    self.authorize(ctx, operation_needed, key, spec=spec)
            result = await run_in_threadpool(work, ctx) if in_thread else work(ctx)
        except Exception as exc:
            error = await self._refuse(ctx, authorization, operation, key, exc, started,
                                       token_required=credential is not None)
            raise error from exc
        facts = None
        if isinstance(result, Audited):
            key, version, answer = result.key or key, result.key_version, result.answer
            facts = result.detail
        else:
            answer = result
        record = self._record(ctx, operation, key, version, None, self.core.clock.now(),
                              detail=facts)
        if ctx.audited:  # the change wrote its record in its own transaction: count it only
            self.core.metrics.observe([record], started)
        else:
            await self._audit([record], ctx, started)
        return answer

    # -- the crypto front ----------------------------------------------------------------------

    async def run_crypto(self, ctx: RequestContext, authorization: str | None,
                         route: CryptoRoute, name: str | None,
                         body: dict[str, Any]) -> dict[str, Any]:
        """A crypto operation, single (``body`` is the item) or batched (``{"batch": [...]}``).

        A foreign front's ``ctx.detail`` (its API and path) stays on every record."""
        started = time.perf_counter()
        batch = "batch" in body
        try:
            items: list[Any] = [body]
            if batch:
                items = body["batch"]
                if len(body) != 1 or not isinstance(items, list) or not items:
                    raise InvalidRequest(
                        "batch must be the only field: a non-empty list of items")
                if len(items) > self.core.settings.max_batch_items:
                    raise TooLarge(
                        f"a batch holds at most {self.core.settings.max_batch_items} items")
                single = None
            else:
                single = parse_body(route.model, body)
            if self.cached_identity(authorization, ctx) is None:
                await self._identity_from_storage(authorization, ctx)
            if name is not None:
                validate_key_name(name)
        except Exception as exc:
            raise await self._refuse(ctx, authorization, route.operation, name, exc,
                                     started) from exc
        if single is None:
            return await self._run_batch(ctx, route, name, items, started)
        context = context_of(single)
        try:
            self._authorize_item(ctx, route, name, context)
            try:
                result = route.call(self.operations, ctx, name, single, False)
            except WouldBlock:
                result = await run_in_threadpool(
                    route.call, self.operations, ctx, name, single, True)
        except Exception as exc:
            error = _as_domain_error(exc)
            key, version, detail = item_facts(None, error, name)
            await self._audit([self._record(ctx, route.operation, key, version, error,
                                            self.core.clock.now(), context, detail)],
                              ctx, started)
            raise error from exc
        key, version, detail = item_facts(result, None, name)
        await self._audit([self._record(ctx, route.operation, key, version, None,
                                        self.core.clock.now(), context, detail)],
                          ctx, started)
        return crypto_json(result)

    def _authorize_item(self, ctx: RequestContext, route: CryptoRoute, name: str | None,
                        context: dict[str, str] | None,
                        batch: batches.Batch | None = None) -> None:
        """The route's permission on the path's key (its name was validated once, before
        any item), with this item's context for rules with conditions.

        In a batch, items without a context share one decision: the same caller, key,
        permission and address give the same answer (a batch is one request, as a
        single call is decided once); items with a context are each decided."""
        if route.permission is None:
            return
        if context is None and batch is not None and batch.allowed_without_context:
            return
        assert ctx.identity is not None
        self.core.authorizer.authorize(ctx.identity, route.permission, name,
                                       client=ctx.client, context=context)
        if context is None and batch is not None:
            batch.allowed_without_context = True

    def _batch_items(self, ctx: RequestContext, route: CryptoRoute, name: str | None,
                     items: list[Any], batch: batches.Batch, *, may_block: bool) -> None:
        """Items through parse → authorize → service, appended to ``batch`` in order.

        With ``may_block=False`` (on the event loop) it stops at the first item that would
        block (``WouldBlock`` comes before any side effect, so that item is simply run
        again) or once ``LOOP_SLICE`` has passed, leaving the rest for a worker thread.
        """
        for raw in items:
            if not may_block and time.perf_counter() > batch.loop_deadline \
                    and batch.slice_spent():
                return
            context = None
            try:
                # Typed one by one: a malformed item answers its own error and does not
                # fail the others (API.md, Batches).
                item = parse_body(route.model, raw)
                context = getattr(item, "context", None)  # context_of, inline (per item)
                self._authorize_item(ctx, route, name, context, batch)
                outcome = route.call(self.operations, ctx, name, item, may_block)
            except WouldBlock:
                return
            except Exception as exc:
                failure = _as_domain_error(exc)
                batch.results.append(error_body(failure, None))
                key, version, _ = item_facts(None, failure, name)
                batch.tally.add(key, version, failure, None, context)
                continue
            batch.results.append(crypto_json(outcome))
            # item_facts(outcome, None, name), inline (per item)
            batch.tally.add(outcome.key or name, outcome.version, None,
                            override_fact(outcome), context)

    async def _run_batch(self, ctx: RequestContext, route: CryptoRoute, name: str | None,
                         items: list[Any], started: float) -> dict[str, Any]:
        now = self.core.clock.now()
        # Cheap items (a cached AES key) run on the event loop for at most LOOP_SLICE; the
        # rest, and any item that would block (storage, rotation, RSA-4096 signing), go
        # to a worker thread in one hop: a thousand RSA signatures must not hold the loop
        # (and every other request on this worker) for seconds.
        batch = batches.Batch(loop_deadline=time.perf_counter() + batches.LOOP_SLICE,
                       cpu_started=time.thread_time())
        self._batch_items(ctx, route, name, items, batch, may_block=False)
        if len(batch.results) < len(items):
            rest = items[len(batch.results):]
            await asyncio.get_running_loop().run_in_executor(
                batches.BATCH_THREADS, partial(self._batch_items, ctx, route, name, rest, batch,
                                        may_block=True))
        records = batch.tally.records(ctx, route.operation, now, len(items),
                                      self.core.audit_trail.keys_or_none)
        await self._audit(records, ctx, started)
        return {"results": batch.results}
