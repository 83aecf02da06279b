"""A keyquorum server served in this process, with the surface HTTP tests use of a server process.

``InProcessServer`` stands in for ``kq_support.ServerProcess`` wherever a test needs
the service and its HTTP answers but no process boundary: the store is a real SQLite
file in ``data_dir`` (built with ``build_core``, as the server builds it), the app is
the real one (``create_app``: the ``Front`` and FastAPI behind it), and initializing,
unsealing and moving the test clock go through the same HTTP routes a server process
is driven through. What is not there is a socket, uvicorn and the HTTP layer of
``keyquorum.runtime`` (header/body timeouts, connection caps, proxy headers, TLS):
tests of those stay on a server process.

One Starlette ``TestClient`` per server runs the app's lifespan (audit writer,
background scheduler, anonymous-refusal flusher) in a thread of its own from
``start()`` to ``stop()``. Every client handed out (``client(token)``, ``anonymous()``)
is a plain ``httpx.Client`` on that test client's transport, so all of them reach the
one running app, may be used from several threads at once, and closing one leaves
the others working. Requests come from ``127.0.0.1`` (``CLIENT``), as a test's
loopback connection to a server process does, so address conditions and the audit
log's ``client`` field read the same.

Like a server process started by ``kq_support`` the store runs on the test clock
(``--unsafe-test-clock``) with the scheduler every 0.5 s; ``config`` is what a
``--config`` file would hold (``kq_support.configured_server``), read by the same
``load_config_file``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from starlette.testclient import TestClient

    from keyquorum.api.front import Front
    from keyquorum.client import AsyncClient as AsyncSdkClient
    from keyquorum.client import Client as SdkClient
    from keyquorum.service.core import Core

# keyquorum is imported by start(), not here: conftest imports this module, and a module
# of src that does not import (mid-refactoring) must not stop every test from loading.

BASE_URL = "http://testserver"
CLIENT = ("127.0.0.1", 50000)
STORE = "keyquorum.db"


class _Shared(httpx.BaseTransport):
    """The test client's transport, lent: closing a client that borrowed it does not
    close it (the test client's transport would drop every client's open streams)."""

    def __init__(self, transport: httpx.BaseTransport) -> None:
        self._transport = transport

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._transport.handle_request(request)


class _SharedAsync(httpx.AsyncBaseTransport):
    """The test client's transport for ``httpx.AsyncClient`` (the async SDK): each request
    is read, then handed to the app's thread from a worker thread, so the caller's event
    loop keeps running while the app answers."""

    def __init__(self, transport: httpx.BaseTransport) -> None:
        self._transport = transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        plain = httpx.Request(request.method, request.url, headers=request.headers,
                              content=body, extensions=request.extensions)
        answer = await asyncio.to_thread(self._transport.handle_request, plain)
        content = await asyncio.to_thread(answer.read)
        return httpx.Response(answer.status_code, headers=answer.headers, content=content,
                              extensions=answer.extensions)


class InProcessServer:
    """A keyquorum app on a real store in ``data_dir``, reached without a socket.

    ``start()`` builds the core and runs the app; ``stop()`` ends the lifespan, seals
    the core and closes the store (and every client handed out). ``migrated`` is an
    empty store at the newest schema to start from (it saves running the migrations).
    """

    def __init__(self, data_dir: Path, *, config: dict[str, Any] | None = None,
                 test_clock: bool = True, run_scheduler: bool = True,
                 migrated: Path | None = None) -> None:
        self.data_dir = data_dir
        self.config = dict(config or {})
        self.test_clock = test_clock
        self.run_scheduler = run_scheduler
        self.migrated = migrated
        self.root_token = ""
        self.shares: list[str] = []
        self.commitments: list[str] = []
        self.core: Core | None = None
        self.app: Front | None = None
        self._test_client: TestClient | None = None
        self._clients: list[httpx.Client] = []

    addr = BASE_URL  # what clients' base_url is; nothing listens there

    def __repr__(self) -> str:
        return f"InProcessServer(data_dir={self.data_dir!r})"

    # -- running -------------------------------------------------------------------------

    def start(self) -> None:
        from keyquorum.api.app import create_app
        from keyquorum.config import Settings, load_config_file
        from keyquorum.runtime.wiring import build_core

        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.migrated is not None and not (self.data_dir / STORE).exists() \
                and "database_url" not in self.config:
            shutil.copyfile(self.migrated, self.data_dir / STORE)
        settings = Settings(data_dir=self.data_dir, unsafe_test_clock=self.test_clock,
                            scheduler_interval=0.5)
        if self.config:
            path = self.data_dir.parent / f"{self.data_dir.name}-config.json"
            path.write_text(json.dumps(self.config))
            settings = load_config_file(settings, path)
        self.core = build_core(settings)
        self.app = create_app(self.core, run_scheduler=self.run_scheduler)
        with warnings.catch_warnings():  # Starlette would rather use httpx2; httpx is ours
            warnings.simplefilter("ignore")
            from starlette.testclient import TestClient

        test_client = TestClient(self.app, base_url=BASE_URL, client=CLIENT)  # type: ignore[arg-type]
        try:
            test_client.__enter__()  # runs the lifespan's startup; stop() its shutdown
        except BaseException:
            self._close_core()
            raise
        self._test_client = test_client

    def stop(self) -> None:
        """End the app's lifespan, seal and close the store; safe to call twice."""
        for client in self._clients:
            client.close()
        self._clients.clear()
        test_client, self._test_client = self._test_client, None
        try:
            if test_client is not None:
                test_client.__exit__(None, None, None)
        finally:
            self._close_core()

    def _close_core(self) -> None:
        core, self.core, self.app = self.core, None, None
        if core is not None:
            if core.initialized and not core.sealed:
                core.seal()
            core.engine.dispose()

    # -- clients -------------------------------------------------------------------------

    def client(self, token: str | None = None) -> httpx.Client:
        """A client carrying ``token`` (the root token if none is given)."""
        return self._client({"Authorization": f"Bearer {token or self.root_token}"})

    def anonymous(self, headers: dict[str, str] | None = None) -> httpx.Client:
        """A client that sends no token (only ``headers``, if given)."""
        return self._client(headers or {})

    def transport(self) -> httpx.BaseTransport:
        """What ``keyquorum.client.Client(addr, token, transport=...)`` needs to reach this
        server (and what ``httpx.Client(transport=...)`` does)."""
        if self._test_client is None:
            raise RuntimeError("the in-process server is not running: start() it first")
        return _Shared(self._test_client._transport)

    def async_transport(self) -> httpx.AsyncBaseTransport:
        """The same for ``keyquorum.client.AsyncClient`` (``httpx.AsyncClient``)."""
        return _SharedAsync(self.transport())

    def sdk(self, token: str | None) -> SdkClient:
        """The SDK's ``Client`` reaching this server, carrying ``token`` (None: no token)."""
        from keyquorum.client import Client

        return Client(self.addr, token, transport=self.transport())

    def async_sdk(self, token: str | None) -> AsyncSdkClient:
        """The SDK's ``AsyncClient`` reaching this server, carrying ``token``."""
        from keyquorum.client import AsyncClient

        return AsyncClient(self.addr, token, transport=self.async_transport())

    def _client(self, headers: dict[str, str]) -> httpx.Client:
        if self._test_client is None:
            raise RuntimeError("the in-process server is not running: start() it first")
        client = httpx.Client(transport=_Shared(self._test_client._transport),
                              base_url=BASE_URL, headers=headers, timeout=30)
        self._clients.append(client)
        return client

    # -- what ServerProcess does over HTTP -----------------------------------------------

    def init(self, shares: int = 3, threshold: int = 2, *, force: bool = False,
             custodians: list[str] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"shares": shares, "threshold": threshold}
        if force:
            body["force"] = True  # k = n is refused without it
        if custodians is not None:
            body["custodians"] = custodians
        with self.anonymous() as http:
            answer = http.post("/v1/sys/init", json=body)
        answer.raise_for_status()
        made: dict[str, Any] = answer.json()
        self.root_token = made["root_token"]
        self.shares = made["shares"]
        self.commitments = made["commitments"]
        return made

    def unseal(self, shares: list[str] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {}
        with self.anonymous() as http:
            for share in shares if shares is not None else self.shares[:2]:
                answer = http.post("/v1/sys/unseal", json={"share": share})
                answer.raise_for_status()
                body = answer.json()
        return body

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        """Move the test clock forward and run the scheduler once (``/v1/sys/unsafe/clock``)."""
        with self.client() as http:
            answer = http.post("/v1/sys/unsafe/clock", json={"advance_seconds": seconds})
        answer.raise_for_status()
        ran: dict[str, Any] = answer.json()
        return ran
