"""uvicorn's httptools protocol with the limits of :mod:`keyquorum.runtime.http_limits`.

A subclass rather than a proxy in front: the timers need the parser's own
events (message begin, headers complete, body, message complete), which only the
protocol sees, and a subclass handed to uvicorn as ``http=`` works unchanged in
``keyquorum server`` and in every ``--workers`` process, since both build
their uvicorn servers from ``keyquorum.runtime.wiring.uvicorn_options``. Everything not
named here is uvicorn's own behaviour.

``data_received`` is uvicorn's (0.55) rewritten, not extended: it must count raw
head bytes before the parser buffers them, tell a limit refusal (431/414) from a
parse error, and hold back the answer to a parse error. Pipelined requests that
arrived complete before a malformed one are answered first, in order, then the
400 and the close (RFC 9112 §9.3.2); uvicorn answered the 400 at once, closed, and
the requests before it ran with nowhere to answer — one was executed and audited
with no reply, and the write to the closed transport left a traceback in the log
(reliability review F6). A parse error *inside* a request's body is still answered
at once (that request can never complete); in-flight requests are then marked
disconnected first, so their late writes are dropped quietly.

Answers made here (400, 408, 414, 431) carry the one error shape of
:func:`keyquorum.api.errors.error_body` and ``connection: close``. They are not
audited (no route, token or key was reached) and not logged one by one (uvicorn
warned at every malformed request): the connection table counts them in its
once-a-minute line, so a flood of garbage cannot flood the log.
"""

from __future__ import annotations

import asyncio
import json
from itertools import chain
from typing import Any, ClassVar, cast

import httptools
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from keyquorum.api.errors import error_body
from keyquorum.errors import InvalidRequest, KeyquorumError, TooLarge
from keyquorum.runtime.http_limits import ConnectionTable, HttpLimits
from keyquorum.service.context import next_request_id

_EARLY = 0.005
"""A timer may fire this much before its deadline (libuv counts milliseconds)."""

_LINGER = 2.0
"""Seconds an answered-and-closing connection keeps draining what its client still sends."""


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing a request past a limit."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """One connection. ``limits`` and ``table`` are bound by :func:`guarded_protocol`."""

    limits: ClassVar[HttpLimits]
    table: ClassVar[ConnectionTable]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._received_any = False
        # The head being read: when it began (None between requests), raw bytes so far.
        self._head_started: float | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_raw = 0
        self._now = 0.0  # when the data being parsed arrived (one clock read per read)
        # The body being read (headers complete, message not yet).
        self._in_body = False
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_started = 0.0
        self._body_last = 0.0
        self._body_bytes = 0
        # Requests received whose answers are not complete, oldest first.
        self._cycles: list[RequestResponseCycle] = []
        self._refusal: tuple[int, KeyquorumError] | None = None
        self._held_error: tuple[int, KeyquorumError] | None = None
        self._linger: asyncio.TimerHandle | None = None

    # -- what the connection table asks ----------------------------------------------

    @property
    def awaiting_answer(self) -> bool:
        return any(not c.more_body and not c.response_complete for c in self._cycles)

    def close_for_room(self) -> None:
        self._cancel_timers()
        self._disconnect_cycles()
        self.transport.close()

    # -- connection ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not self.table.admit(self):
            transport.close()  # every open connection is being answered: no room
            return
        self._head_started = self.loop.time()
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self.table.discard(self)
        self._cancel_timers()
        self._disconnect_cycles()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._held_error or self._linger or self.transport.is_closing():
            return  # an error is answered or waits its turn: nothing more is read
        self._received_any = True
        self._now = self.loop.time()
        self.table.touch(self)
        if self.timeout_keep_alive_task is not None:  # uvicorn's _unset_keepalive_if_required
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None
        if not self._in_body:
            if self._head_started is None:
                self._head_started = self._now
            if self._head_raw > self.limits.max_head_bytes:
                self._fail(431, TooLarge(
                    f"request header fields exceed {self.limits.max_header_bytes} bytes"))
                return
            self._head_raw += len(data)
        if not self._in_body and data.startswith(b"LIST "):
            data = list_as_get(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            # uvicorn logged a warning per malformed request; it goes into the table's
            # once-a-minute count instead, so garbage cannot flood the log.
            self._fail(*(self._refusal or (400, InvalidRequest(
                "the request is not valid HTTP/1.1"))))
            return
        if self.transport.is_closing():
            return
        if self._head_started is not None and self._head_timer is None:
            self._arm_head_timer()
        if self._in_body and self._body_timer is None:
            self._arm_body_timer()

    def handle_websocket_upgrade(self) -> None:
        # The connection becomes uvicorn's websocket protocol's (keyquorum has no websocket
        # routes, so it is refused there): it leaves this table and these timers.
        self.table.discard(self)
        self._cancel_timers()
        super().handle_websocket_upgrade()

    # -- parser callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_started is None:  # a pipelined head, begun inside this read
            self._head_started = self._now

    def on_url(self, url: bytes) -> None:
        self.url += url  # uvicorn's, inline; called per piece as the target arrives
        if len(self.url) > self.limits.max_url_bytes:
            self._refuse(414, f"the request target exceeds {self.limits.max_url_bytes} bytes")

    # Header fields are counted once the head is complete, not per field: the raw count
    # in data_received already bounds what a head can buffer, and a per-field override
    # would cost every request a Python call per field.

    def on_headers_complete(self) -> None:
        limits = self.limits
        if len(self.headers) > limits.max_headers:
            self._refuse(431, f"a request may carry at most {limits.max_headers} header fields")
        if sum(map(len, chain.from_iterable(self.headers))) > limits.max_header_bytes:
            self._refuse(431, f"request header fields exceed {limits.max_header_bytes} bytes")
        self._head_started = None
        self._head_raw = 0
        self._cancel_head_timer()
        before = self.cycle
        super().on_headers_complete()
        if self.cycle is not before:  # a request was started or queued (not an upgrade)
            self._cycles.append(self.cycle)
            self._in_body = True
            self._body_started = self._body_last = self._now
            self._body_bytes = 0

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        self._body_last = self._now
        cycle = self.cycle  # uvicorn's on_body, inline (one call less per piece of body)
        if cycle.response_complete or (self.parser.should_upgrade()
                                       and self._should_upgrade()):
            return
        cycle.body += body
        if len(cycle.body) > HIGH_WATER_LIMIT:
            self.flow.pause_reading()
        cycle.message_event.set()

    def on_message_complete(self) -> None:
        cycle = self.cycle  # uvicorn's on_message_complete, inline
        if not (cycle.response_complete or (self.parser.should_upgrade()
                                            and self._should_upgrade())):
            cycle.more_body = False
            cycle.message_event.set()
        self._in_body = False
        self._head_raw = 0
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        cycles = self._cycles
        while cycles and cycles[0].response_complete:  # answers complete in order
            del cycles[0]
        if self._held_error is not None and not self._cycles and not self.pipeline:
            self._answer_and_close(*self._held_error)

    # -- timers ---------------------------------------------------------------------------

    def _arm_head_timer(self) -> None:
        assert self._head_started is not None
        self._head_timer = self.loop.call_at(self._head_started + self.limits.header_timeout,
                                             self._head_timeout)

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self._head_started is None or self.transport.is_closing():
            return
        now = self.loop.time()
        if self.flow.read_paused or self.awaiting_answer:
            # A pipelined head waits behind an answer we are still making: not its fault.
            self._head_started = now
            self._arm_head_timer()
            return
        if now < self._head_started + self.limits.header_timeout - _EARLY:
            self._arm_head_timer()
            return
        self.table.note("cut at the header timeout")
        if self._received_any:
            self._answer_and_close(408, InvalidRequest(
                f"the request headers did not arrive within {self.limits.header_timeout:g} s"))
        else:
            self._close()  # connected and sent nothing: no one to answer

    def _body_deadline(self) -> float:
        limits = self.limits
        deadline = self._body_last + limits.body_timeout
        if limits.min_body_rate:
            earned = self._body_bytes / limits.min_body_rate  # each byte buys 1/rate s
            deadline = min(deadline, self._body_started + limits.body_timeout + earned)
        return deadline

    def _arm_body_timer(self) -> None:
        self._body_timer = self.loop.call_at(self._body_deadline(), self._body_timeout)

    def _body_timeout(self) -> None:
        self._body_timer = None
        if not self._in_body or self.transport.is_closing():
            return
        now = self.loop.time()
        if self.flow.read_paused or self.cycle.waiting_for_100_continue:
            # We are not reading (or have not said "continue"): start the client's clocks anew.
            self._body_last = now
            rate = self.limits.min_body_rate
            self._body_started = now - (self._body_bytes / rate if rate else 0.0)
            self._arm_body_timer()
            return
        if now < self._body_deadline() - _EARLY:
            self._arm_body_timer()
            return
        self.table.note("cut at the body timeout")
        self._answer_and_close(408, InvalidRequest(
            f"the request body did not arrive in time (next piece within "
            f"{self.limits.body_timeout:g} s, at least {self.limits.min_body_rate} bytes/s)"))

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _cancel_timers(self) -> None:
        self._cancel_head_timer()
        for timer in (self._body_timer, self._linger):
            if timer is not None:
                timer.cancel()
        self._body_timer = self._linger = None

    # -- refusing and closing -------------------------------------------------------------

    def _refuse(self, status: int, message: str) -> None:
        self._refusal = (status, TooLarge(message))
        raise _Refused(message)

    def _fail(self, status: int, error: KeyquorumError) -> None:
        """Answer a request that cannot be served, after any complete ones before it."""
        self.table.note(f"answered {status}")
        unanswered = [c for c in self._cycles if not c.response_complete]
        if not unanswered or (unanswered == [self.cycle] and self._in_body):
            self._answer_and_close(status, error)  # the answer can only be this request's
        elif not self._in_body:
            self._held_error = (status, error)  # after the complete requests before it
            self._cancel_timers()
            self.flow.pause_reading()
        else:
            # Broken inside a body while earlier requests wait for answers: an answer now
            # would be read as theirs, and this request can never complete. Just close.
            self._close()

    def _answer_and_close(self, status: int, error: KeyquorumError) -> None:
        if any(c.response_started and not c.response_complete for c in self._cycles):
            self._close()  # an answer is half written: nothing else may go on the wire
            return
        request_id = next_request_id()  # the one error shape, request id included
        body = json.dumps(error_body(error, request_id)).encode()
        head = [STATUS_LINE[status], b"x-request-id: ", request_id.encode(), b"\r\n",
                b"cache-control: no-store\r\nx-content-type-options: nosniff\r\n"]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [b"content-type: application/json\r\ncontent-length: ", b"%d" % len(body),
                 b"\r\nconnection: close\r\n\r\n", body]
        self._close(b"".join(head))

    def _close(self, last_words: bytes = b"") -> None:
        self._cancel_timers()
        self._disconnect_cycles()
        if self.transport.is_closing():
            return
        if last_words and self.transport.can_write_eof():
            # A lingering close: closing a socket with unread bytes in it (the rest of an
            # oversized head, a pipelined tail) sends a reset, which can destroy our answer
            # before the client reads it. So: answer, end our side, drain and discard what
            # still comes for a moment. It stays in the table, closable for room.
            self.transport.write(last_words)
            self.transport.write_eof()
            self.flow.resume_reading()
            self._linger = self.loop.call_later(_LINGER, self.transport.close)
            return
        if last_words:
            self.transport.write(last_words)
        self.table.discard(self)
        self.transport.close()

    def _disconnect_cycles(self) -> None:
        """Requests still running see a disconnect and their writes are dropped, instead
        of failing on a closed transport."""
        for cycle in self._cycles:
            if not cycle.response_complete:
                cycle.disconnected = True
                cycle.message_event.set()
        self._cycles = []


def guarded_protocol(limits: HttpLimits) -> type[GuardedHttpToolsProtocol]:
    """A protocol class for uvicorn's ``http=``, bound to ``limits`` and to a connection
    table of its own (one per process: build it in the process that serves)."""
    bound = type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,),
                 {"limits": limits, "table": ConnectionTable(limits)})
    return cast(type[GuardedHttpToolsProtocol], bound)


def list_as_get(data: bytes) -> bytes:
    """Vault's ``LIST`` method as ``GET ...?list=true`` (what Vault itself accepts too):
    the HTTP parser (llhttp) knows a fixed set of methods and LIST is not among them,
    and Vault clients (hvac's list calls) send it."""
    line_end = data.find(b"\r\n")
    space = data.find(b" ", 5, line_end if line_end >= 0 else len(data))
    if space < 0:
        return data  # the request line is not complete in this chunk: leave it alone
    target = data[5:space]
    joined = target + (b"&" if b"?" in target else b"?") + b"list=true"
    return b"GET " + joined + data[space:]
