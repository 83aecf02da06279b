"""``keyquorum server --workers N``: N server processes on one socket and one store.

Python runs one thread of Python at a time, so one process uses about one core;
N worker processes share the listening socket (the kernel spreads connections)
and the SQLite store (WAL allows several processes). What cannot be shared
through the store is kept coherent by this supervisor:

* **Unseal** — shares may reach any worker, so the supervisor alone holds the
  unseal progress (each share still verified alone against the commitments);
  at quorum it sends the root key to every worker over a private socketpair.
* **Changes** a worker's caches hold (a key's new revision, a sealed barrier, a
  revoked token, changed policies, init) are relayed to every other worker.
  A worker applies a relayed change within milliseconds; until then it may serve
  the previous revision, which is the bound ARCHITECTURE.md states for nodes.

The supervisor holds the data dir's lock, starts nothing else before forking,
and stops every worker when it is told to stop or when any worker dies.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import sys
import threading
from dataclasses import replace
from typing import Any

from keyquorum.config import Settings
from keyquorum.errors import InvalidRequest, KeyquorumError, Sealed
from keyquorum.failure_log import describe_failure
from keyquorum.runtime import hardening, heap
from keyquorum.runtime.change_feed import attach_local_peers
from keyquorum.runtime.peers import PeerLink, encode_key, read_message, send_message
from keyquorum.seal.seal_set import SHAMIR_ENTRY
from keyquorum.seal.shamir import ShamirSealConfig, UnsealProgress
from keyquorum.storage.engine import migrate, open_engine
from keyquorum.storage.system_repo import get_entry

log = logging.getLogger("keyquorum.cluster")


def _listen(settings: Settings) -> socket.socket:
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run_workers(settings: Settings, workers: int) -> None:
    """Fork ``workers`` server processes and supervise them until stopped."""
    settings = replace(settings, workers=workers)
    engine = open_engine(settings.url, password_file=settings.database_password_file)
    migrate(engine)
    engine.dispose()  # no pooled connection may cross the fork
    listener = _listen(settings)
    links: dict[int, socket.socket] = {}
    for index in range(workers):
        supervisor_end, worker_end = socket.socketpair()
        pid = os.fork()
        if pid == 0:  # the worker
            supervisor_end.close()
            for other in links.values():
                other.close()
            _worker_main(settings, listener, worker_end, index)
            os._exit(0)
        worker_end.close()
        links[pid] = supervisor_end
    listener.close()
    Supervisor(settings, links).run()


def _worker_main(settings: Settings, listener: socket.socket, link: socket.socket,
                 index: int) -> None:
    import uvicorn

    from keyquorum.api.app import create_app
    from keyquorum.runtime.wiring import build_core, uvicorn_options

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides when to stop
    # Memory locks are not inherited across fork; the supervisor already warned once.
    hardening.apply(settings.memory_lock, warn=False)
    core = build_core(settings, worker=index)
    peers = PeerLink(link, core.apply_peer_event)
    attach_local_peers(core, peers)
    peers.start()
    app = create_app(core, run_scheduler=index == 0)
    config = uvicorn.Config(app, **uvicorn_options(settings))
    heap.settle()  # start-up's objects out of the collector's way (runtime.heap)
    # The inherited socket object itself (uvicorn's ``fd=`` would rebuild it as a Unix
    # socket, and asyncio would then leave Nagle on: 40 ms per small answer).
    uvicorn.Server(config).run(sockets=[listener])


class Supervisor:
    """Relays changes between workers and holds the one unseal progress."""

    def __init__(self, settings: Settings, links: dict[int, socket.socket]) -> None:
        self.settings = settings
        self.links = links
        self.progress = UnsealProgress()
        self.engine = open_engine(settings.url, password_file=settings.database_password_file)
        self.locks = {pid: threading.Lock() for pid in links}
        self.stopping = False

    def run(self) -> None:
        def stop(_signum: int, _frame: Any) -> None:
            self.stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        print(f"keyquorum supervisor: {len(self.links)} workers on {self.settings.listen}",
              file=sys.stderr)
        try:
            while not self.stopping and self.links:
                ready, _, _ = select.select(list(self.links.values()), [], [], 0.5)
                for sock in ready:
                    pid = next(p for p, s in self.links.items() if s is sock)
                    message = read_message(sock)
                    if message is None:
                        log.error("worker %d went away; stopping all", pid)
                        self.stopping = True
                        break
                    self.handle(pid, message)
                self._reap()
        finally:
            self.shutdown()

    def _reap(self) -> None:
        with contextlib.suppress(ChildProcessError):
            pid, _status = os.waitpid(-1, os.WNOHANG)
            if pid and pid in self.links:
                log.error("worker %d exited; stopping all", pid)
                self.stopping = True

    def send(self, pid: int, message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            send_message(self.links[pid], message, self.locks[pid])

    def broadcast(self, message: dict[str, Any], *, skip: int | None = None) -> None:
        for pid in self.links:
            if pid != skip:
                self.send(pid, message)

    def handle(self, pid: int, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "broadcast":
            event = message["event"]
            if event.get("op") == "seal":
                self.progress.reset()
            self.broadcast(event, skip=pid)
        elif op == "unseal":
            self.send(pid, {"op": "answer", "id": message["id"], **self.unseal(message)})

    def unseal(self, message: dict[str, Any]) -> dict[str, Any]:
        try:
            if message.get("reset"):
                self.progress.reset_with(message.get("nonce"))
                return {"progress": 0}
            with self.engine.connect() as conn:
                raw = get_entry(conn, SHAMIR_ENTRY)
            if raw is None:
                raise Sealed("the service is not initialized")
            config = ShamirSealConfig.from_json(raw)
            root_key = self.progress.submit(config, message.get("share"))
            if root_key is not None:
                # Every worker opens before the submitting one gets its answer (same socket,
                # in order), so the answer it gives already says unsealed.
                self.broadcast({"op": "open", "root_key": encode_key(root_key)})
            return {"progress": self.progress.count, "nonce": self.progress.nonce}
        except KeyquorumError as error:
            return {"error": {"code": error.code, "message": error.message}}
        except Exception as exc:  # never let a bad share take the supervisor down
            log.error("unseal failed: %s", describe_failure(exc))
            return {"error": {"code": InvalidRequest.code,
                              "message": "the share could not be processed"}}

    def shutdown(self) -> None:
        for pid in list(self.links):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in list(self.links):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            self.links.pop(pid).close()
        self.progress.reset()
