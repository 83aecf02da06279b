"""Client load for the cluster fault tests: threads that encrypt and create keys, and
remember every answer, so a test can say afterwards what was acknowledged and check
that all of it is still there.

Each thread has its own keep-alive connection to one target (a node, or the load
balancer) and loops until stopped: four encrypts of a plaintext unique to that
request, then one key creation with a name unique to it. Every request becomes an
``Outcome`` with its start, duration, HTTP status (None when the connection failed:
refused, reset, or the answer never came) and error code. A thread that could not
connect waits 20 ms before its next try, so a dead target is not spun on.
"""

from __future__ import annotations

import base64
import itertools
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import httpx

KEY = "load/k"
"""The aes-256-gcm key every encrypt uses (``create_load_key`` makes it)."""


@dataclass(frozen=True)
class Outcome:
    target: str
    kind: str  # "encrypt" or "create"
    started: float  # time.monotonic()
    elapsed: float
    status: int | None  # None: no HTTP answer (refused, reset, timed out)
    code: str | None = None  # a non-200 answer's error code, or the connection's failure
    plaintext: str = ""  # base64, for encrypt
    ciphertext: str | None = None  # the acknowledged ciphertext
    name: str | None = None  # the key a create named

    @property
    def ended(self) -> float:
        return self.started + self.elapsed

    @property
    def ok(self) -> bool:
        return self.status == 200


def create_load_key(http: httpx.Client) -> None:
    made = http.post("/v1/keys", json={"name": KEY, "spec": "aes-256-gcm"})
    assert made.status_code == 200, made.text


class Load:
    """``threads`` client threads per target, each on its own connection."""

    def __init__(self, targets: Sequence[tuple[str, str]], token: str, *, threads: int = 2,
                 timeout: float = 30.0, creates: bool = True) -> None:
        self._targets = targets
        self._token = token
        self._per_target = threads
        self._timeout = timeout
        self._creates = creates
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.outcomes: list[Outcome] = []

    @property
    def concurrency(self) -> int:
        """Client threads in all: the most requests that can be in flight at once."""
        return len(self._targets) * self._per_target

    def __enter__(self) -> Load:
        for label, addr in self._targets:
            for number in range(self._per_target):
                thread = threading.Thread(target=self._run, args=(label, addr, number),
                                          daemon=True)
                self._threads.append(thread)
                thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> list[Outcome]:
        self._stop.set()
        for thread in self._threads:
            thread.join(self._timeout + 5)
        assert not any(thread.is_alive() for thread in self._threads), "a client hung"
        return self.outcomes

    def snapshot(self) -> list[Outcome]:
        with self._lock:
            return list(self.outcomes)

    def _record(self, outcome: Outcome) -> None:
        with self._lock:
            self.outcomes.append(outcome)

    def _run(self, label: str, addr: str, number: int) -> None:
        headers = {"Authorization": f"Bearer {self._token}"}
        with httpx.Client(base_url=addr, headers=headers, timeout=self._timeout) as http:
            for n in itertools.count():
                if self._stop.is_set():
                    return
                tag = f"{label}-{number}-{n}"
                if self._creates and n % 5 == 4:
                    outcome = self._call(http, label, "create", "/v1/keys",
                                         {"name": f"load/made/{tag}", "spec": "aes-256-gcm"})
                else:
                    plaintext = base64.b64encode(tag.encode()).decode()
                    outcome = self._call(http, label, "encrypt", f"/v1/keys/{KEY}/encrypt",
                                         {"plaintext": plaintext})
                self._record(outcome)
                if outcome.status is None:
                    time.sleep(0.02)

    @staticmethod
    def _call(http: httpx.Client, label: str, kind: str, path: str,
              body: dict[str, str]) -> Outcome:
        started = time.monotonic()
        try:
            answer = http.post(path, json=body)
        except httpx.TransportError as error:
            return Outcome(label, kind, started, time.monotonic() - started, None,
                           f"{type(error).__name__}: {error}"[:120],
                           plaintext=body.get("plaintext", ""), name=body.get("name"))
        elapsed = time.monotonic() - started
        code = None
        ciphertext = None
        if answer.status_code == 200:
            ciphertext = answer.json().get("ciphertext") if kind == "encrypt" else None
        else:
            try:
                code = answer.json()["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = answer.text[:80]
        return Outcome(label, kind, started, elapsed, answer.status_code, code,
                       plaintext=body.get("plaintext", ""), ciphertext=ciphertext,
                       name=body.get("name"))


def unreadable(http: httpx.Client, outcomes: Iterable[Outcome]) -> list[str]:
    """What of the acknowledged ``outcomes`` the node behind ``http`` does not give back:
    ciphertexts that do not decrypt to their plaintext, keys that are not there.
    Empty when everything acknowledged is present."""
    acknowledged = [o for o in outcomes if o.ok]
    missing: list[str] = []
    sealed = [o for o in acknowledged if o.kind == "encrypt"]
    for start in range(0, len(sealed), 100):
        chunk = sealed[start:start + 100]
        answer = http.post(f"/v1/keys/{KEY}/decrypt", json={
            "batch": [{"ciphertext": o.ciphertext} for o in chunk]})
        assert answer.status_code == 200, answer.text
        for outcome, result in zip(chunk, answer.json()["results"], strict=True):
            if result.get("plaintext") != outcome.plaintext:
                missing.append(f"ciphertext of {outcome.target} at {outcome.started:.3f}: "
                               f"{result}")
    made = {o.name for o in acknowledged if o.kind == "create" and o.name is not None}
    listed: set[str] = set()
    page: str | None = None
    while True:
        params = {"prefix": "load/made/", "limit": "1000",
                  **({"page_token": page} if page else {})}
        answer = http.get("/v1/keys", params=params)
        assert answer.status_code == 200, answer.text
        listed.update(key["name"] for key in answer.json()["keys"])
        page = answer.json().get("next_page_token")
        if not page:
            break
    missing.extend(f"key {name}" for name in sorted(made - listed))
    return missing
