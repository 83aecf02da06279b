"""The HTTP application: routes, error mapping, and the services behind them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from keyquorum import __version__
from keyquorum.api import (
    routes_access_keys,
    routes_approvals,
    routes_audit,
    routes_auth,
    routes_backup,
    routes_custodians,
    routes_generate_root,
    routes_keys,
    routes_metrics,
    routes_openapi,
    routes_rekey,
    routes_reports,
    routes_seals,
    routes_simulate,
    routes_sys,
)
from keyquorum.api.anonymous import WINDOW_SECONDS
from keyquorum.api.errors import install_error_handlers
from keyquorum.api.foreign import ForeignFront
from keyquorum.api.front import Front
from keyquorum.api.request_id import RequestIdHeader
from keyquorum.api.responses import JSONAnswer
from keyquorum.api.runner import Runner
from keyquorum.api.services import Services
from keyquorum.kms.expiry import MaterialExpiry
from keyquorum.kms.front import KmsFront
from keyquorum.metrics.collector import share_between_workers
from keyquorum.runtime.node_link import NodeLink
from keyquorum.service.core import Core
from keyquorum.service.generate_root import GenerateRoot
from keyquorum.service.lifecycle import KeyLifecycle
from keyquorum.service.operations import CryptoOperations
from keyquorum.service.scheduler import Scheduler
from keyquorum.service.seals import start_auto_unseal
from keyquorum.transit.front import TransitFront


def build_services(core: Core) -> Services:
    # Expired imported material is refused at use, natively as over KMS (kms.expiry).
    core.keys.use_check = MaterialExpiry(core.engine, core.clock)
    lifecycle = KeyLifecycle(core)
    operations = CryptoOperations(core, lifecycle)
    return Services(core=core, lifecycle=lifecycle,
                    operations=operations, runner=Runner(core, operations),
                    scheduler=Scheduler(core, lifecycle, core.settings.scheduler_interval),
                    access_keys=core.access_keys, generate_root=GenerateRoot(core))


async def _flush_anonymous_refusals(services: Services) -> None:
    """Write the summaries of anonymous refusals whose window has closed."""
    while True:
        await asyncio.sleep(WINDOW_SECONDS / 4)
        await services.runner.flush_anonymous()


def create_app(core: Core, *, run_scheduler: bool = True) -> Front:
    services = build_services(core)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        core.audit.start()
        core.audit_trail.checkpoint_quietly("start")  # signed now if already unsealed (dev)
        share_between_workers(core)  # --workers N: every scrape sees all workers' counts
        link = NodeLink(core, core.node) if run_scheduler else None
        if run_scheduler:  # with several workers, one runs the background jobs
            services.scheduler.start()
            start_auto_unseal(core)  # HSM / KMS seals: opens every worker, or stays sealed
            assert link is not None
            link.start()  # the cluster: answer enrolled nodes, follow its seal, or ask
        flusher = asyncio.create_task(_flush_anonymous_refusals(services))
        try:
            yield
        finally:
            flusher.cancel()
            if link is not None:
                link.stop()
            services.scheduler.stop()
            core.release_usage()  # counts stay exact across a restart
            await services.runner.flush_anonymous(force=True)
            # Every record of this process is in (requests awaited theirs, the summaries
            # just above): sign the tail before the writer and the sinks stop.
            core.audit_trail.checkpoint_quietly("shutdown")
            core.audit.stop()

    app = FastAPI(title="keyquorum", version=__version__, lifespan=lifespan,
                  default_response_class=JSONAnswer, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.services = services
    install_error_handlers(app)
    app.include_router(routes_sys.router)
    app.include_router(routes_seals.router)
    app.include_router(routes_seals.ceremony_router)
    app.include_router(routes_custodians.router)
    app.include_router(routes_rekey.router)
    app.include_router(routes_generate_root.router)
    app.include_router(routes_backup.router)
    app.include_router(routes_keys.router)
    app.include_router(routes_auth.router)
    app.include_router(routes_access_keys.router)
    app.include_router(routes_simulate.router)
    app.include_router(routes_audit.router)
    app.include_router(routes_audit.sinks_router)
    app.include_router(routes_approvals.router)
    app.include_router(routes_reports.router)
    app.include_router(routes_metrics.router)
    app.include_router(routes_openapi.router)
    app.add_middleware(RequestIdHeader)
    front = Front(app, services, tls=core.settings.tls_cert is not None,
                  foreign=foreign_fronts(services))
    for foreign in front.foreign:  # Vault's seal paths are handed back to the native front
        if isinstance(foreign, TransitFront):
            foreign.native = front
    return front


def foreign_fronts(services: Services) -> list[ForeignFront]:
    """The front ends for other products' clients, each over the same pipeline."""
    fronts: list[ForeignFront] = []
    fronts.append(TransitFront(services))  # Vault / OpenBao transit at /v1/<mount>/
    fronts.append(KmsFront(services))  # AWS KMS JSON 1.1 at POST /
    return fronts
