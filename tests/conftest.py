"""Shared fixtures.

Two ways to reach a keyquorum server:

- **In process** (``core``, ``app``, ``api``, ``api_sync``): a real ``Core`` on a
  temporary SQLite store with a test clock (``OffsetClock``), initialized and
  unsealed through ``Core.init``/``Core.unseal``, served by the real ASGI app
  (``create_app``: the ``Front`` and FastAPI behind it) without a socket or a
  process. Answers and audit records are the real ones. Use it for every API test
  that does not need a process boundary.
- **In process, shaped like a server process** (``fresh_inprocess``,
  ``inprocess_server``, ``shared_inprocess``, ``make_inprocess``): an
  ``inprocess_server.InProcessServer``, the same real app and store with the surface
  tests use of a server process (``client(token)``, ``anonymous()``, ``init()``,
  ``unseal()``, ``advance_clock()``, ``root_token``, ``shares``, ``data_dir``), for
  synchronous HTTP tests written against ``ServerProcess``.
- **A server process** (``fresh_server``, ``kq_server``, ``shared_server``): started
  through the ``keyquorum`` console entry point exactly as an operator would
  (``python -m keyquorum server ...``), initialized and unsealed over real HTTP.
  Only for TLS, ``--workers``, crash, restarts, the HTTP layer (``keyquorum.runtime``)
  and CLI or SDK entry points; mark such tests ``server``.

To change the in-process server's settings, override ``core`` in a test module::

    @pytest.fixture
    def core(make_core: CoreFactory) -> Core:
        return make_core(max_body_bytes=4096)

``api`` and ``app`` are built on whatever ``core`` gives.

**Backends.** Stores are SQLite files unless a module is marked
``pytestmark = pytest.mark.postgresql``: then every test of it that builds a store
(``core``, ``make_core``, the in-process servers, ``store_engine``) runs twice, on
SQLite and on a database of its own in the PostgreSQL the session starts
(``pg_support``; ``postgres`` is that server, for tests that need it directly).
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from inprocess_server import InProcessServer
from kq_support import ServerProcess, free_port
from pg_support import PostgresCluster, StoreDatabases, find_bindir

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from starlette.testclient import TestClient

    from keyquorum.api.front import Front
    from keyquorum.clock import OffsetClock
    from keyquorum.service.core import Core

# keyquorum itself is imported by the fixtures that use it, not here: a module of
# src that does not import (mid-refactoring) must not stop every test from loading.

__all__ = ["CoreFactory", "InProcessServer", "MakeInProcess", "MintToken", "PostgresCluster",
           "ServerProcess", "StoreDatabases", "async_client", "free_port", "lifespan"]

BASE_URL = "http://testserver"
MintToken = Callable[[list[dict[str, Any]]], Awaitable[str]]
MakeInProcess = Callable[..., InProcessServer]


@pytest.fixture(scope="session", autouse=True)
def _private_token_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep the CLI's token file (``keyquorum login``, ``keyquorum dev``) out of ~.

    Set in the environment, so server processes and CLI calls of every test inherit it;
    tests of the token file point ``KEYQUORUM_TOKEN_FILE`` at their own path.
    """
    import os

    path = tmp_path_factory.mktemp("token-file") / "keyquorum-token"
    previous = os.environ.get("KEYQUORUM_TOKEN_FILE")
    os.environ["KEYQUORUM_TOKEN_FILE"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("KEYQUORUM_TOKEN_FILE", None)
    else:
        os.environ["KEYQUORUM_TOKEN_FILE"] = previous


# -- the store: SQLite, and PostgreSQL for modules marked ``postgresql`` --------------------


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked ``postgresql`` that builds a store runs once per backend.

    Scoped to the module, so a module's shared server is built once per backend and
    its tests run grouped by backend.
    """
    if "store_backend" in metafunc.fixturenames \
            and metafunc.definition.get_closest_marker("postgresql") is not None:
        metafunc.parametrize("store_backend", ["sqlite", "postgresql"], indirect=True,
                             scope="module")


@pytest.fixture(scope="module")
def store_backend(request: pytest.FixtureRequest) -> str:
    """``sqlite`` (the default), or ``postgresql`` in a module marked ``postgresql``."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL server of this test session (one per xdist worker), started on first
    use and stopped, its directory removed, at the end, even if it failed to start."""
    import os

    bindir = find_bindir()
    if bindir is None:
        message = ("no PostgreSQL 15+ server binaries (Debian: apt-get install postgresql; "
                   "scripts/test installs it)")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from keyquorum.storage.postgres import PASSWORD_ENV

    cluster = PostgresCluster(bindir)
    previous = os.environ.get(PASSWORD_ENV)
    os.environ[PASSWORD_ENV] = cluster.password  # what every keyquorum of the tests uses
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()
        if previous is None:
            os.environ.pop(PASSWORD_ENV, None)
        else:
            os.environ[PASSWORD_ENV] = previous


@pytest.fixture
def store_databases(request: pytest.FixtureRequest,
                    store_backend: str) -> Iterator[StoreDatabases]:
    """This test's stores (``.new()``), dropped after it."""
    databases = StoreDatabases(request, store_backend)
    try:
        yield databases
    finally:
        databases.drop_all()


@pytest.fixture
def store_engine(tmp_path: Path, store_databases: StoreDatabases) -> Iterator[Engine]:
    """An engine on a new store at the newest schema, on the backend under test; closed
    after the test."""
    from keyquorum.storage.engine import migrate, open_engine

    database = store_databases.new_settings()
    if database:
        engine = open_engine(database["database_url"])
    else:
        engine = open_engine(f"sqlite:///{tmp_path / 'kq.db'}")
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()


# -- a server process ----------------------------------------------------------------------


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A started, uninitialized, sealed server of this test's own."""
    server = ServerProcess(data_dir=tmp_path / "data", port=free_port())
    try:  # a server that starts late (or not at all) is still stopped
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def kq_server(fresh_server: ServerProcess) -> ServerProcess:
    """A started, initialized (2-of-3) and unsealed server of this test's own."""
    fresh_server.init()
    fresh_server.unseal()
    return fresh_server


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One initialized, unsealed server shared by a module's tests (faster)."""
    server = ServerProcess(data_dir=tmp_path_factory.mktemp("kq") / "data", port=free_port())
    try:  # stopped even when start, init or unseal fails
        server.start()
        server.init()
        server.unseal()
        yield server
    finally:
        server.stop()


# -- in process, shaped like a server process -----------------------------------------------


@pytest.fixture
def make_inprocess(tmp_path: Path, migrated_store: Path,
                   store_databases: StoreDatabases) -> Iterator[MakeInProcess]:
    """``make_inprocess(config={...}, **options)``: a started, uninitialized, sealed
    ``InProcessServer`` of this test's own (``config`` as a ``--config`` file would hold;
    options as ``InProcessServer`` takes them). All are stopped after the test."""
    made: list[InProcessServer] = []

    def make(**options: Any) -> InProcessServer:
        name = "data" if not made else f"data{len(made)}"
        config = dict(options.pop("config", None) or {})
        if "database_url" not in config:
            config.update(store_databases.new())
        server = InProcessServer(tmp_path / name, migrated=migrated_store, config=config,
                                 **options)
        made.append(server)
        server.start()
        return server

    try:
        yield make
    finally:
        for server in made:
            server.stop()


@pytest.fixture
def fresh_inprocess(make_inprocess: MakeInProcess) -> InProcessServer:
    """In process: a started, uninitialized, sealed server of this test's own."""
    return make_inprocess()


@pytest.fixture
def inprocess_server(fresh_inprocess: InProcessServer) -> InProcessServer:
    """In process: a started, initialized (2-of-3) and unsealed server of this test's own."""
    fresh_inprocess.init()
    fresh_inprocess.unseal()
    return fresh_inprocess


@pytest.fixture(scope="module")
def shared_inprocess(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                     migrated_store: Path, store_backend: str) -> Iterator[InProcessServer]:
    """In process: one initialized, unsealed server shared by a module's tests."""
    databases = StoreDatabases(request, store_backend)
    server = InProcessServer(tmp_path_factory.mktemp("kq") / "data", migrated=migrated_store,
                             config=databases.new())
    try:  # stopped even when start, init or unseal fails
        server.start()
        server.init()
        server.unseal()
        yield server
    finally:
        server.stop()
        databases.drop_all()


# -- in process ----------------------------------------------------------------------------


class CoreFactory:
    """Builds cores on this test's temporary directory; seals and closes them after.

    ``make_core(**settings)`` gives a core initialized (2-of-3) and unsealed;
    ``make_core(initialized=False)`` one that is neither. Cores run on an
    ``OffsetClock`` (``unsafe_test_clock``) unless told otherwise. What ``Core.init``
    answered (root token, shares) is kept: ``init_answer(core)``.
    """

    def __init__(self, tmp_path: Path, migrated: Path | None = None,
                 databases: StoreDatabases | None = None) -> None:
        self._tmp_path = tmp_path
        self._migrated = migrated
        self._databases = databases
        self._made: list[Core] = []
        self._answers: dict[int, dict[str, Any]] = {}

    def __call__(self, *, initialized: bool = True, **settings: Any) -> Core:
        data_dir = self._tmp_path / f"core{len(self._made)}"
        data_dir.mkdir(parents=True)
        if self._databases is not None and "database_url" not in settings:
            settings.update(self._databases.new_settings())
        if self._migrated is not None and "database_url" not in settings:
            # A copy of an empty store already at the newest schema: running every
            # migration costs ~0.2 s a test; build_core still checks the revision.
            shutil.copyfile(self._migrated, data_dir / self._migrated.name)
        from keyquorum.config import Settings
        from keyquorum.runtime.wiring import build_core

        settings.setdefault("unsafe_test_clock", True)
        core = build_core(Settings(data_dir=data_dir, **settings))
        self._made.append(core)
        if initialized:
            answer = core.init(3, 2)
            for share in answer["shares"][:2]:
                core.unseal(share)
            self._answers[id(core)] = answer
        return core

    def init_answer(self, core: Core) -> dict[str, Any]:
        return self._answers[id(core)]

    def close(self) -> None:
        for core in self._made:
            if core.initialized and not core.sealed:
                core.seal()
            core.engine.dispose()


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite store at the newest schema revision, to copy (never to use)."""
    from keyquorum.config import Settings
    from keyquorum.runtime.wiring import build_core

    data_dir = tmp_path_factory.mktemp("migrated")
    core = build_core(Settings(data_dir=data_dir))
    core.engine.dispose()
    store = data_dir / "keyquorum.db"
    assert sorted(p.name for p in data_dir.iterdir()) == [store.name]  # no WAL left over
    return store


@pytest.fixture
def make_core(tmp_path: Path, migrated_store: Path,
              store_databases: StoreDatabases) -> Iterator[CoreFactory]:
    factory = CoreFactory(tmp_path, migrated_store, store_databases)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def core(make_core: CoreFactory) -> Core:
    """An initialized (2-of-3), unsealed core on a temporary store (SQLite; PostgreSQL too
    in a module marked ``postgresql``)."""
    return make_core()


@pytest.fixture
def clock(core: Core) -> OffsetClock:
    """The core's test clock: ``clock.advance(seconds)`` moves the service's time."""
    from keyquorum.clock import OffsetClock

    assert isinstance(core.clock, OffsetClock)
    return core.clock


@pytest.fixture
def root_token(core: Core, make_core: CoreFactory) -> str:
    return str(make_core.init_answer(core)["root_token"])


@pytest.fixture
def app(core: Core) -> Front:
    """The ASGI application a server would run on ``core`` (no background scheduler).

    ``app.services`` reaches the pipeline (``app.services.runner``) and the services.
    """
    from keyquorum.api.app import create_app

    return create_app(core, run_scheduler=False)


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """Run ``app``'s ASGI lifespan as a server does: startup before, shutdown after.

    ``httpx.ASGITransport`` sends only HTTP scopes, so without this the audit
    writer (started at startup) would never run and every audited request would
    time out.
    """
    to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"},
                                    "state": {}}, to_app.get, from_app.put))

    async def answer_to(message: str) -> None:
        await to_app.put({"type": f"lifespan.{message}"})
        reply = asyncio.ensure_future(from_app.get())
        await asyncio.wait({reply, task}, return_when=asyncio.FIRST_COMPLETED)
        if not reply.done():
            reply.cancel()
            task.result()  # the app raised: show why
            raise RuntimeError(f"the app ended without answering lifespan.{message}")
        if reply.result()["type"] != f"lifespan.{message}.complete":
            raise RuntimeError(f"lifespan.{message} failed: {reply.result()}")

    await answer_to("startup")
    try:
        yield
    finally:
        await answer_to("shutdown")
        await task


@pytest.fixture
async def running_app(app: Front) -> AsyncIterator[Front]:
    """``app`` with its lifespan running (audit writer started), for async clients."""
    async with lifespan(app):
        yield app


def asgi(app: Front) -> Any:
    """``app`` for clients typed against ASGI (``Front`` types its scope as a dict)."""
    return app


def async_client(app: Front, token: str | None = None) -> httpx.AsyncClient:
    """An httpx client speaking to ``app`` in process, with ``token`` if given."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=asgi(app)), base_url=BASE_URL,
        headers={"Authorization": f"Bearer {token}"} if token is not None else None)


@pytest.fixture
async def api(running_app: Front, root_token: str) -> AsyncIterator[httpx.AsyncClient]:
    """An async HTTP client of ``app`` (lifespan running), carrying the root token.

    Tests using it are async: mark them ``pytest.mark.anyio``. Pass
    ``headers={"Authorization": f"Bearer {token}"}`` to speak as another token.
    """
    async with async_client(running_app, root_token) as client:
        yield client


@pytest.fixture
async def anonymous_api(running_app: Front) -> AsyncIterator[httpx.AsyncClient]:
    """An async client of the same running ``app`` that sends no token."""
    async with async_client(running_app) as client:
        yield client


@pytest.fixture
def fresh_core(make_core: CoreFactory) -> Core:
    """An uninitialized, sealed core of its own (for init and unseal)."""
    return make_core(initialized=False)


@pytest.fixture
async def fresh_api(fresh_core: Core) -> AsyncIterator[httpx.AsyncClient]:
    """An async client (no token) of an app running on ``fresh_core``."""
    from keyquorum.api.app import create_app

    fresh = create_app(fresh_core, run_scheduler=False)
    async with lifespan(fresh), async_client(fresh) as client:
        yield client


@pytest.fixture
def api_sync(app: Front, root_token: str) -> Iterator[TestClient]:
    """A synchronous client of ``app`` (Starlette's test client runs the lifespan in a
    thread of its own), carrying the root token. Do not combine with the async
    clients: each would run the app's lifespan."""
    with warnings.catch_warnings():  # Starlette would rather use httpx2; httpx is what we have
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    with TestClient(asgi(app), base_url=BASE_URL,
                    headers={"Authorization": f"Bearer {root_token}"}) as client:
        yield client


_policy_numbers = itertools.count(1)


@pytest.fixture
def mint_token(api: httpx.AsyncClient) -> MintToken:
    """``await mint_token(rules)``: a token whose one policy holds ``rules``.

    The policy is written with ``PUT /v1/policies/{name}`` and the token made with
    ``POST /v1/auth/tokens``, as an operator would, using the root token.
    """

    async def mint(rules: list[dict[str, Any]]) -> str:
        name = f"test-policy-{next(_policy_numbers)}"
        answer = await api.put(f"/v1/policies/{name}", json={"rules": rules})
        assert answer.status_code == 200, answer.text
        answer = await api.post("/v1/auth/tokens", json={"policies": [name]})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["token"])

    return mint
