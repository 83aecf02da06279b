"""A keyquorum app served in this process: API tests without a server process.

``from kq_inprocess import inprocess_app``: the store is built with ``build_core`` (as
the server does), initialized and unsealed through the core, and the app is driven
by Starlette's test client, which runs its lifespan (the audit writer starts and
stops with it). Answers and audit records are the real ones.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from keyquorum.api.app import create_app
from keyquorum.config import Settings
from keyquorum.runtime.wiring import build_core
from keyquorum.service.core import Core

with warnings.catch_warnings():  # Starlette would rather use httpx2; httpx is what we have
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@dataclass
class InProcess:
    core: Core
    http: TestClient  # carries the root token


@contextmanager
def inprocess_app(data_dir: Path, *, test_clock: bool = False) -> Iterator[InProcess]:
    """An initialized (2-of-3), unsealed app on ``data_dir``; sealed and closed after."""
    data_dir.mkdir(parents=True, exist_ok=True)
    core = build_core(Settings(data_dir=data_dir, unsafe_test_clock=test_clock))
    made = core.init(3, 2)
    for share in made["shares"][:2]:
        core.unseal(share)
    app = create_app(core, run_scheduler=False)
    try:
        with TestClient(app, headers={"Authorization": f"Bearer {made['root_token']}"}) as http:
            yield InProcess(core, http)
    finally:
        if not core.sealed:
            core.seal()
        core.engine.dispose()
