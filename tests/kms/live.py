"""A keyquorum server listening on a real socket in this process, for AWS clients.

boto3, the ``aws`` command line and the AWS Encryption SDK speak HTTP to an
``endpoint_url``, so they need a listener: ``LiveServer`` serves the real app
(``create_app`` on ``build_core``, with the server's uvicorn options) from a
thread on a free loopback port, on a copy of the migrated store, and is
initialized and unsealed over HTTP like a server process. It starts in well
under a second, so each test module gets its own.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from tests.kq_support import free_port

STORE = "keyquorum.db"


class LiveServer:
    def __init__(self, data_dir: Path, *, migrated: Path | None = None,
                 **settings: Any) -> None:
        self.data_dir = data_dir
        self.migrated = migrated
        self.settings = settings
        self.port = free_port()
        self.root_token = ""
        self.core: Any = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def addr(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        from keyquorum.api.app import create_app
        from keyquorum.config import Settings
        from keyquorum.runtime.wiring import build_core, uvicorn_options

        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.migrated is not None and not (self.data_dir / STORE).exists():
            shutil.copyfile(self.migrated, self.data_dir / STORE)
        settings = Settings(data_dir=self.data_dir, listen=f"127.0.0.1:{self.port}",
                            unsafe_test_clock=True, scheduler_interval=0.5,
                            **self.settings).validate()
        self.core = build_core(settings)
        config = uvicorn.Config(create_app(self.core), host="127.0.0.1", port=self.port,
                                **uvicorn_options(settings))
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True,
                                        name="kms-live-server")
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the live server did not start")
            time.sleep(0.02)
        made = httpx.post(f"{self.addr}/v1/sys/init", json={"shares": 3, "threshold": 2},
                          timeout=30).json()
        self.root_token = made["root_token"]
        for share in made["shares"][:2]:
            httpx.post(f"{self.addr}/v1/sys/unseal", json={"share": share}, timeout=30)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
        core, self.core = self.core, None
        if core is not None:
            if core.initialized and not core.sealed:
                core.seal()
            core.engine.dispose()

    def http(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.addr, timeout=30,
                            headers={"Authorization": f"Bearer {token or self.root_token}"})

    def access_key(self, policies: list[str], **body: Any) -> dict[str, Any]:
        with self.http() as http:
            answer = http.post("/v1/auth/access-keys", json={"policies": policies, **body})
        answer.raise_for_status()
        made: dict[str, Any] = answer.json()
        return made

    def kms(self, credentials: dict[str, Any], *, validate: bool = True,
            **options: Any) -> Any:
        """A boto3 KMS client for this server with ``credentials`` (an access key);
        ``validate=False`` sends what botocore would refuse, to see the server refuse it."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "kms", endpoint_url=self.addr, region_name=options.pop("region", "eu-west-1"),
            aws_access_key_id=credentials["access_key_id"],
            aws_secret_access_key=credentials["secret_access_key"],
            config=Config(retries={"max_attempts": 1}, parameter_validation=validate), **options)

    def audit(self, **filters: str) -> list[dict[str, Any]]:
        with self.http() as http:
            answer = http.get("/v1/audit", params={"limit": "1000", **filters})
        answer.raise_for_status()
        records: list[dict[str, Any]] = answer.json()["records"]
        return records
