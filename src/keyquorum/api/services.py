"""The services a route needs, found through one FastAPI dependency."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from keyquorum.api.runner import Runner
from keyquorum.auth.access_keys import AccessKeyStore
from keyquorum.service.core import Core
from keyquorum.service.generate_root import GenerateRoot
from keyquorum.service.lifecycle import KeyLifecycle
from keyquorum.service.operations import CryptoOperations
from keyquorum.service.scheduler import Scheduler


@dataclass
class Services:
    core: Core
    lifecycle: KeyLifecycle
    operations: CryptoOperations
    runner: Runner
    scheduler: Scheduler
    access_keys: AccessKeyStore  # AWS SigV4 credentials (keyquorum.kms)
    generate_root: GenerateRoot  # break glass; one per process (it holds the failure bounds)


async def services(request: Request) -> Services:
    # async: FastAPI runs a plain ``def`` dependency in the thread pool, a thread hop per
    # request only to read an attribute.
    return request.app.state.services
