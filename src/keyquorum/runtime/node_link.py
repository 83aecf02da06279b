"""A node's link to the rest of the cluster through the shared store, once a second.

While this node is **unsealed** it answers enrolled nodes that ask for the root key
(``service.node_handoff.NodeResponder``) and follows the cluster's seal epoch:
when someone seals the cluster (``POST /v1/sys/seal`` on any node raises the
epoch), this node seals too, within one interval. The epoch it compares with is the
one ``Core`` read when it opened (``Core.opened_epoch``), so a seal of the cluster
issued between this node's opening and the link's next pass is not missed.

While it is **sealed** and has a node key (``node_key_file``), it asks: it writes
a request with a fresh nonce, waits for an answer signed by the audit key it
pins (``node_trust_key``), made under the seal epoch still stored (an answer made
before someone sealed the cluster opens nothing: ``service.node_handoff``), opens
the box with its private key and unseals. Any failure (no answer yet, a forged,
stale or damaged answer, a root key the keyring refuses) leaves it sealed and
asking; Shamir shares, a passphrase or an automatic
seal still open it as always.

It runs in the worker that runs the background jobs; opening or sealing here
reaches the sibling workers as every unseal and seal does.
"""

from __future__ import annotations

import logging
import secrets
import threading
from pathlib import Path

from keyquorum.crypto import kem_box
from keyquorum.crypto.errors import InvalidCiphertext
from keyquorum.crypto.kem import KemKey
from keyquorum.service.context import RequestContext, next_request_id
from keyquorum.service.core import Core
from keyquorum.service.node_handoff import (
    REQUEST_PREFIX,
    REQUEST_TTL,
    RESPONSE_PREFIX,
    HandoffRequest,
    HandoffResponse,
    NodeResponder,
    box_context,
    clear_request,
    read_epoch,
    verify_response,
)
from keyquorum.storage.system_repo import get_entry, put_entry

log = logging.getLogger("keyquorum.node")


def load_node_key(path: Path) -> tuple[KemKey, str]:
    """The node's private key and its public key's fingerprint; ``ValueError`` says why not."""
    if path.stat().st_mode & 0o077:
        raise ValueError(f"{path} must be readable by its owner only (chmod 600)")
    key = kem_box.load_private_pem(path.read_text())
    return key, kem_box.public_fingerprint(key.public_pem())


class NodeLink:
    """The once-a-second loop (module docstring); ``tick`` is one pass, for tests too."""

    def __init__(self, core: Core, node_id: str) -> None:
        self.core = core
        self.node_id = node_id
        self.responder = NodeResponder(core)
        self._key: KemKey | None = None
        self._fingerprint = ""
        self._trusted = core.settings.node_trust_key
        key_file = core.settings.node_key_file
        if key_file is not None:
            self._key, self._fingerprint = load_node_key(key_file)
        self._request: HandoffRequest | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="keyquorum-node-link",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.core.settings.node_link_interval):
            try:
                self.tick()
            except Exception as exc:  # the next interval tries again
                log.error("node-link: %s", type(exc).__name__)

    def tick(self) -> None:
        core = self.core
        if not core.initialized:
            return
        if core.sealed:
            if self._key is not None:
                self._ask()
            return
        self._follow_cluster_seal()
        if not core.sealed:
            self.responder.answer_requests()

    # -- unsealed ----------------------------------------------------------------------------

    def _follow_cluster_seal(self) -> None:
        opened = self.core.opened_epoch  # read with the keyring this node opened
        if opened is None:  # sealed since tick looked: the next pass asks or waits
            return
        with self.core.engine.connect() as conn:
            epoch = read_epoch(conn)
        if epoch > opened and self.core.opened_epoch == opened:  # not reopened meanwhile
            log.warning("node-link: the cluster was sealed (epoch %d); sealing this node",
                        epoch)
            self.core.seal()

    # -- sealed ------------------------------------------------------------------------------

    def _ask(self) -> None:
        core = self.core
        now = core.clock.now()
        if self._request is None or now - self._request.requested_at > REQUEST_TTL / 2:
            self._request = HandoffRequest(self.node_id, secrets.token_hex(16),
                                           self._fingerprint, now)
            with core.engine.begin() as conn:
                put_entry(conn, REQUEST_PREFIX + self.node_id, self._request.to_json(), now)
            return
        with core.engine.connect() as conn:
            raw = get_entry(conn, RESPONSE_PREFIX + self.node_id)
        if raw is None:
            return
        try:
            response = HandoffResponse.from_json(self.node_id, raw)
        except (ValueError, KeyError, TypeError):
            return
        if response.nonce != self._request.nonce:
            return  # an answer to an older request (or a replayed one)
        self._open(response)

    def _open(self, response: HandoffResponse) -> None:
        core = self.core
        assert self._key is not None and self._trusted is not None
        if not verify_response(response, self._trusted):
            log.error("node-link: an answer not signed by the trusted audit key was ignored")
            return
        with core.engine.connect() as conn:
            stored_epoch = read_epoch(conn)
        if stored_epoch != response.epoch:
            log.error("node-link: an answer made before the cluster was sealed (epoch %d, "
                      "now %d) was ignored", response.epoch, stored_epoch)
            return
        try:
            root_key = kem_box.open_box(self._key, response.box,
                                        context=box_context(self.node_id, response.nonce))
        except InvalidCiphertext:
            log.error("node-link: an answer that does not open with this node's key was "
                      "ignored")
            return
        core.open_with_root_key(root_key)  # the keyring refuses a wrong key: stays sealed
        if core.opened_epoch != response.epoch:  # the cluster was sealed while it opened
            log.error("node-link: the cluster was sealed while this node opened; sealing")
            core.seal()
            return
        self._request = None
        ctx = RequestContext(request_id=next_request_id(), client="node-link")
        with core.changes.audited(ctx, "sys:unseal", detail={
                "method": "node-handoff", "node": self.node_id,
                "answered_by": response.answered_by}) as change:
            clear_request(change.conn, self.node_id)
        log.warning("node-link: unsealed by node %s", response.answered_by)


__all__ = ["NodeLink", "load_node_key"]
