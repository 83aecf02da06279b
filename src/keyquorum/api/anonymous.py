"""Refusals of requests nobody authenticated: counted per client, summarized in the audit.

Writing one durable audit record (and one metrics series) per anonymous refusal
lets anyone who can reach the port grow the store and ``/metrics`` without
limit (security review F12: 3,000 requests, 3,000 records and series). Instead
the first refusal of each client in a window is recorded at once, so an attack
is visible immediately, and the rest of the window is one summary record with
the count and the error codes. Records name no key: a name nobody validated
never becomes a record's key or a metrics label.

Memory is bounded too: past ``MAX_CLIENTS`` tracked clients every open window
is summarized and forgotten.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from keyquorum.audit.records import AuditRecord
from keyquorum.clock import Clock
from keyquorum.service.context import next_request_id

WINDOW_SECONDS = 60.0
MAX_CLIENTS = 10_000
SUMMARY_OPERATION = "auth:anonymous-refusals"


@dataclass
class _Window:
    started: float
    first_operation: str
    codes: Counter[str] = field(default_factory=Counter)


class AnonymousRefusals:
    def __init__(self, clock: Clock, window: float = WINDOW_SECONDS,
                 max_clients: int = MAX_CLIENTS) -> None:
        self._clock = clock
        self._window = window
        self._max_clients = max_clients
        self._windows: dict[str | None, _Window] = {}
        self._lock = threading.Lock()

    def count(self, client: str | None, operation: str, code: str,
              request_id: str) -> list[AuditRecord]:
        """Count one refusal; the records to write now (maybe none)."""
        now = self._clock.now()
        out: list[AuditRecord] = []
        with self._lock:
            window = self._windows.get(client)
            if window is not None and now - window.started < self._window:
                window.codes[code] += 1
                return out
            if window is not None:
                out.extend(self._summary(client, window, now))
                del self._windows[client]
            if len(self._windows) >= self._max_clients:
                for other, open_window in self._windows.items():
                    out.extend(self._summary(other, open_window, now))
                self._windows.clear()
            self._windows[client] = _Window(started=now, first_operation=operation)
        out.append(AuditRecord(time=now, request_id=request_id, identity=None,
                               operation=operation, key=None, key_version=None,
                               outcome=_outcome(code), error_code=code, client=client,
                               detail={"anonymous": "first refusal of this client's window"}))
        return out

    def flush(self, *, force: bool) -> list[AuditRecord]:
        """Summaries of the windows that have closed (every window when ``force``)."""
        now = self._clock.now()
        out: list[AuditRecord] = []
        with self._lock:
            for client in list(self._windows):
                window = self._windows[client]
                if force or now - window.started >= self._window:
                    out.extend(self._summary(client, window, now))
                    del self._windows[client]
        return out

    def _summary(self, client: str | None, window: _Window, now: float) -> list[AuditRecord]:
        total = sum(window.codes.values())
        if not total:  # only the first refusal, already recorded on its own
            return []
        codes = ",".join(f"{code}={n}" for code, n in sorted(window.codes.items()))
        return [AuditRecord(
            time=now, request_id=next_request_id(), identity=None,
            operation=SUMMARY_OPERATION, key=None, key_version=None,
            outcome="denied", error_code=None, client=client,
            detail={"items": str(total), "codes": codes,
                    "window_started": f"{window.started:.3f}",
                    "window_seconds": f"{self._window:g}"})]


def _outcome(code: str) -> str:
    return "denied" if code in ("unauthenticated", "forbidden") else "error"
