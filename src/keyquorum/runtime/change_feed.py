"""Nodes on one PostgreSQL: each change a node's caches hold reaches every other node.

``--workers`` on one host relays changes through its supervisor (``runtime.peers``).
Nodes on different hosts share only the database, so a node announces the same typed
events (``service.changes``: a key's new revision, a revoked token or access key,
changed policies or audit sinks, a changed seal configuration) with PostgreSQL's
NOTIFY, and listens for the others' on a connection of its own.

A notification is a fast path, not a guarantee: PostgreSQL delivers it only to nodes
listening at that moment, and a node can die between its commit and its NOTIFY. So
once every ``interval`` (and whenever the listening connection is made again) each
node also runs a *revision check*: it compares what its caches hold with the store
(every cached key's revision; tokens and access keys revoked lately; a digest of the
policies; the stored keyring, which a rekey re-seals under a new root key) and
applies whatever differs. A change thus reaches every node within
milliseconds when the notification arrives, and within ``interval`` (plus the check's
own time) when it does not.

Only events that carry no secret are sent: the root key travels between workers of
one host over a socketpair, never through the database (``node_link`` hands it to
another node sealed to that node's key).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import Engine, event

from keyquorum.failure_log import describe_failure
from keyquorum.seal.barrier import KEYRING_ENTRY
from keyquorum.service.root_follow import follow_root_key
from keyquorum.storage import notify_repo

log = logging.getLogger("keyquorum.cluster")

CHANNEL = "keyquorum_changes"
FORWARDED = frozenset({"key", "token", "access-key", "policies", "audit-sinks", "seal-config",
                       "init", "keyring"})
"""The events other nodes need and that carry nothing secret."""
CHECK_INTERVAL = 0.5
"""Seconds between revision checks: the bound on staleness when a notification is lost
(measured on two in-process nodes: a revocation honoured by the other node in a median
of 19-29 ms with its NOTIFY, and of 0.50 s, at most 0.54 s, with the NOTIFY dropped)."""
OUTAGE_NOTICE = 30.0
"""Seconds between two log lines while the feed cannot reach the database."""
REVOCATION_LOOKBACK = 300.0
"""Seconds of revocations re-read at each check: covers a revoking node's clock being
up to that much behind this one's (``revoked_at`` is written by the node that revokes)."""


class Peers(Protocol):
    active: bool

    def announce(self, event: dict[str, Any]) -> None: ...

    def unseal(self, body: dict[str, Any]) -> dict[str, Any]: ...


class ChangeFeed:
    """This node's line to the other nodes, in front of its local ``inner`` peers."""

    def __init__(self, engine: Engine, apply: Callable[[dict[str, Any]], None],
                 cached_revisions: Callable[[], dict[str, int]], inner: Peers, *,
                 interval: float = CHECK_INTERVAL) -> None:
        self.inner = inner
        self.node = uuid.uuid4().hex  # tells this node's own notifications apart
        self.interval = interval
        self._engine = engine
        self._apply = apply
        self._cached_revisions = cached_revisions
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._policies: str | None = None
        self._keyring: str | None = None
        self._forgotten: dict[str, float] = {}  # accessor -> when it was applied here
        self.checks = 0  # revision checks that read the store (for tests and health)

    @property
    def active(self) -> bool:
        return self.inner.active

    # -- out ---------------------------------------------------------------------------

    def announce(self, event: dict[str, Any]) -> None:
        self.inner.announce(event)
        if event.get("op") in FORWARDED:
            self.publish(event)

    def unseal(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.inner.unseal(body)

    def publish(self, event: dict[str, Any]) -> None:
        """NOTIFY the other nodes; a failure is only logged (the revision check covers it)."""
        payload = json.dumps({"node": self.node, "event": event}, separators=(",", ":"))
        try:
            with self._engine.begin() as conn:
                notify_repo.notify(conn, CHANNEL, payload)
        except Exception as exc:
            log.warning("could not notify the other nodes of a change (%s); they see it at "
                        "their next revision check", type(exc).__name__)

    # -- in ----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="keyquorum-change-feed",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.interval + 5)

    def _run(self) -> None:
        failing_since: float | None = None
        while not self._stopping.is_set():
            try:
                self._listen()
                failing_since = None
            except Exception as exc:  # the database went away: retry every interval
                now = time.monotonic()
                if failing_since is None or now - failing_since > OUTAGE_NOTICE:
                    failing_since = now  # one line per outage (and per 30 s of it)
                    log.warning("change feed: cannot listen (%s); retrying every %.1f s",
                                type(exc).__name__, self.interval)
                self._stopping.wait(self.interval)

    def _listen(self) -> None:
        with self._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            driver = notify_repo.listen(conn, CHANNEL)
            self.check()  # whatever changed while this node was not listening
            while not self._stopping.is_set():
                for note in driver.notifies(timeout=self.interval):
                    self._receive(note.payload)
                    if self._stopping.is_set():
                        return
                self.check()

    def _receive(self, payload: str) -> None:
        try:
            message = json.loads(payload)
            event = message["event"]
            if message.get("node") == self.node or event.get("op") not in FORWARDED:
                return
            self._apply(event)
        except Exception as exc:  # one bad notification must not stop the feed
            log.error("change feed: could not apply a notification: %s",
                      describe_failure(exc))

    def check(self) -> None:
        """The revision check: apply every change the caches missed."""
        now = time.time()
        cached = self._cached_revisions()
        with self._engine.connect() as conn:
            stored = notify_repo.key_revisions(conn, cached)
            tokens = notify_repo.tokens_revoked_since(conn, now - REVOCATION_LOOKBACK)
            access = notify_repo.access_keys_revoked_since(conn, now - REVOCATION_LOOKBACK)
            policies = notify_repo.policies_fingerprint(conn)
            keyring = notify_repo.entry_fingerprint(conn, KEYRING_ENTRY)
        self.checks += 1  # counted before applying: whoever sees a change sees the count
        for key_id, revision in cached.items():
            if stored.get(key_id) != revision:
                self._apply({"op": "key", "id": key_id})
        for op, accessors in (("token", tokens), ("access-key", access)):
            for accessor in accessors:
                if accessor not in self._forgotten:
                    self._apply({"op": op, "accessor": accessor})
                    self._forgotten[accessor] = now
        self._forgotten = {a: t for a, t in self._forgotten.items()
                           if t > now - 2 * REVOCATION_LOOKBACK}
        if self._policies is not None and policies != self._policies:
            self._apply({"op": "policies"})
        self._policies = policies
        if keyring != self._keyring:  # a rekey elsewhere (or the first look): follow it
            self._apply({"op": "keyring"})  # (a node whose root key opens it does nothing)
        self._keyring = keyring


def join_cluster(core: Any, *, interval: float = CHECK_INTERVAL) -> ChangeFeed:
    """Put a change feed in front of ``core``'s peers and start it; it stops when the
    core's engine is disposed."""
    def apply(event: dict[str, Any]) -> None:
        if event.get("op") == "keyring":  # the root key may have been rotated elsewhere
            follow_root_key(core)
        else:
            core.apply_peer_event(event)

    feed = ChangeFeed(core.engine, apply, core.keys.revisions, core.peers,
                      interval=interval)
    core.peers = feed
    event.listen(core.engine, "engine_disposed", lambda _engine: feed.stop())
    feed.start()
    return feed


def attach_local_peers(core: Any, peers: Peers) -> None:
    """Give ``core`` its ``--workers`` siblings: behind its change feed when it has one
    (both then hear of its changes), as its peers otherwise."""
    if isinstance(core.peers, ChangeFeed):
        core.peers.inner = peers
    else:
        core.peers = peers
