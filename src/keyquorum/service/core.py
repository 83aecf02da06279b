"""The service core: the seal, the barrier, and the stores every service shares.

One ``Core`` per server process. It starts sealed; ``init`` creates the seal
and the root token once; ``unseal`` takes shares one by one (each verified
alone); ``seal`` drops every secret from memory. The root key and the barrier's
keyring are held in bytearrays that sealing overwrites (review F10).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from keyquorum import __version__
from keyquorum.audit.in_transaction import write_audit_in
from keyquorum.audit.keys import AUDIT_KEYS_ENTRY, AuditKeys
from keyquorum.audit.log import AuditLog
from keyquorum.audit.sink_registry import AuditSinkRegistry
from keyquorum.audit.sinks import SinkSet
from keyquorum.audit.trail import AuditTrail
from keyquorum.auth.access_keys import AccessKeyStore
from keyquorum.auth.authorizer import Authorizer
from keyquorum.auth.dual_control import DualControl
from keyquorum.auth.policy_store import PolicyStore
from keyquorum.auth.tokens import TokenStore
from keyquorum.clock import Clock
from keyquorum.config import Settings
from keyquorum.crypto.random import random_buffer
from keyquorum.crypto.wipe import wipe
from keyquorum.errors import Conflict, Sealed
from keyquorum.keys.models import Key
from keyquorum.metrics.counters import OperationMetrics
from keyquorum.runtime import hardening
from keyquorum.runtime.peers import NoPeers, PeerLink, decode_key, encode_key
from keyquorum.seal.barrier import (
    KEYRING_ENTRY,
    Barrier,
    BarrierError,
    Keyring,
    open_keyring,
    seal_keyring,
)
from keyquorum.seal.fingerprint import root_key_id
from keyquorum.seal.seal_set import SHAMIR_ENTRY
from keyquorum.seal.shamir import (
    ShamirSealConfig,
    UnsealProgress,
    create_shamir_seal,
    verified_share,
)
from keyquorum.service import share_delivery
from keyquorum.service.changes import ChangeEvent, UnitOfWork
from keyquorum.service.clock_skew import ClockGuard
from keyquorum.service.context import RequestContext
from keyquorum.service.custodians import CustodianRegistry
from keyquorum.service.keycache import KeyCache
from keyquorum.service.seals import SealSet
from keyquorum.service.sys_values import (
    AuditHealth,
    CustodianStatus,
    Health,
    SealStatus,
)
from keyquorum.storage import keys_repo
from keyquorum.storage.seal_epoch import read_epoch
from keyquorum.storage.system_repo import get_entry, insert_entry

log = logging.getLogger("keyquorum.core")



class Core:
    def __init__(self, settings: Settings, engine: Engine, clock: Clock, node: str,
                 audit_node: str | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.node = node
        # this node's clock against the database's: the scheduler's jobs obey it
        self.clock_guard = ClockGuard(engine, clock, settings.max_clock_skew)
        # audit_node: this process's audit chain (audit.nodes); the commit file lock
        # only where the workers share one chain and one writer (SQLite)
        self.audit = AuditLog(engine, commit_lock=settings.data_dir / "audit.lock"
                              if settings.workers > 1 and audit_node is None else None,
                              sinks=SinkSet.from_configs(settings.audit_sinks), node=audit_node)
        self.audit_trail = AuditTrail(engine, self.audit, clock)
        self.audit_sinks = AuditSinkRegistry(engine, clock, self.audit.sinks,
                                             settings.audit_sinks, settings.audit_sink_targets)
        self.tokens = TokenStore(engine, clock)
        self.access_keys = AccessKeyStore(engine, clock, self.barrier)  # SigV4 identities
        self.policies = PolicyStore(engine, clock)
        self.authorizer = Authorizer(self.policies)
        self.dual_control = DualControl(engine, clock, settings.dual_control, self.policies,
                                        self.authorizer, self.audit)
        self.metrics = OperationMetrics()  # counted by the Runner, read by /metrics
        self.custodian_registry = CustodianRegistry(engine, clock, self.audit,
                                                    settings.drill_window_days)
        # passphrase, HSM, KMS seals; a committed change reloads here and tells the workers
        self.seal_set = SealSet(engine, clock, self.audit,
                                changed=lambda: self.seal_config_changed(),
                                trust=settings.seal_trust)
        self.progress = UnsealProgress()
        self.write_lock = threading.RLock()
        self._barrier: Barrier | None = None
        # while unsealed: seals and backups wrap it; a bytearray, wiped on seal
        self._root_key: bytes | bytearray | None = None
        self._seal_config: ShamirSealConfig | None = None
        # the cluster's seal epoch when this process opened (runtime.node_link follows it)
        self.opened_epoch: int | None = None
        self.keys = KeyCache(engine, self.barrier, settings.usage_reserve_block)
        self.peers: NoPeers | PeerLink = NoPeers()
        self.changes = UnitOfWork(engine, self.audit, clock, self._changed)
        self._load_seal_config()

    @property
    def seal_config(self) -> ShamirSealConfig | None:
        return self._seal_config

    def initialized_seal_config(self) -> ShamirSealConfig:
        """The Shamir seal configuration, or ``Sealed`` if the service is not initialized."""
        config = self._seal_config
        if config is None:
            raise Sealed("the service is not initialized")
        return config

    def root_key(self) -> bytes:
        """The root key while unsealed (to wrap it under a new seal or derive a backup key).

        A copy, taken under the lock that sealing holds while it wipes the original: a
        backup still streaming when the service seals keeps the key it started with
        (never a wiped one). The copy is not wiped; it lives as long as its user.
        """
        with self.write_lock:
            root_key = self._root_key
            if root_key is None or self._barrier is None:
                raise Sealed()
            copy = bytes(root_key)
        if self.engine.dialect.name == "postgresql":
            self._require_current_root(copy)
        return copy

    def _require_current_root(self, root_key: bytes) -> None:
        """Nodes sharing a store: a rekey on another one may have rotated the root key
        moments ago (this node follows within its change feed's interval,
        ``service.root_follow``). Nothing is ever made from a retired root key: it must
        still open the stored keyring."""
        with self.engine.connect() as conn:
            blob = get_entry(conn, KEYRING_ENTRY)
        try:
            if blob is None:
                raise BarrierError("no keyring")
            open_keyring(root_key, blob).wipe()
        except BarrierError:
            raise Sealed("a rekey on another node rotated the root key; this node's no longer "
                         "opens the keyring, and it is about to seal itself (unseal it with "
                         "the new shares, or let an enrolled peer hand it the key)") from None

    def seal_config_changed(self) -> None:
        """The stored seal configuration changed here (rekey, seal set): reload, tell peers."""
        self._load_seal_config()
        self.peers.announce({"op": "seal-config"})

    def _load_seal_config(self) -> None:
        with self.engine.connect() as conn:
            raw = get_entry(conn, SHAMIR_ENTRY)
        self._seal_config = ShamirSealConfig.from_json(raw) if raw else None

    # -- state ---------------------------------------------------------------------------

    @property
    def initialized(self) -> bool:
        return self._seal_config is not None

    @property
    def sealed(self) -> bool:
        return self._barrier is None

    def barrier(self) -> Barrier:
        barrier = self._barrier
        if barrier is None:
            raise Sealed()
        return barrier

    def seal_status(self, nonce: str | None = None) -> SealStatus:
        """Where the seal stands; ``nonce`` only for the answer to an unseal submitter."""
        config = self._seal_config
        return SealStatus(
            initialized=config is not None, sealed=self.sealed,
            threshold=config.threshold if config else None,
            shares=config.shares if config else None, progress=self.progress.count,
            seals=tuple(self.seal_set.describe(config, with_params=False)),
            version=__version__, nonce=nonce)

    def health(self) -> Health:
        hardened = hardening.current()  # what this process achieved at start (F10)
        config = self._seal_config
        return Health(
            hardening=hardened.describe() if hardened is not None else None,
            initialized=self.initialized, sealed=self.sealed, version=__version__,
            node=self.node, worker=os.getpid(), storage=self.engine.dialect.name,
            audit=self.audit_health(),
            custodians=(self.custodian_registry.quorum(config, public=True)
                        if config is not None else None),
            clock=self.clock_guard.health())

    def audit_health(self) -> AuditHealth:
        """The audit writer and every sink; ``degraded`` when a best-effort sink is failing."""
        sinks = self.audit.sinks.status()
        return AuditHealth(running=self.audit.running, backlog=self.audit.backlog,
                           degraded=any(not sink["healthy"] for sink in sinks),
                           sinks=tuple(sinks))

    # -- ceremonies -------------------------------------------------------------------------

    def init(self, shares: int, threshold: int, custodians: Sequence[str] | None = None,
             ctx: RequestContext | None = None,
             custodian_keys: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Create the root key, barrier keyring, Shamir seal and root token, once.

        ``shares``, ``threshold`` and ``custodians`` are checked by the request
        (``api.bodies_sys.InitService``: the split, the names, and k = n only when
        forced); ``create_shamir_seal`` refuses an impossible split or bad names again.
        With ``custodian_keys`` (a public key per custodian) each share is sealed to
        its custodian (``service.share_delivery``) and the answer holds envelopes
        only; without, the shares are answered in the clear, once.
        With ``ctx``, the init's audit record is written inside the same transaction:
        if it cannot be recorded, nothing is initialized, so shares are never made
        that nobody gets to see.
        """
        with self.write_lock:
            if self.initialized:
                raise Conflict("the service is already initialized")
            root_key = random_buffer(32)
            keyring = Keyring.generate()
            config, share_texts = create_shamir_seal(root_key, shares, threshold,
                                                     list(custodians or ()))
            recipients = share_delivery.given_for_init(config.names, custodian_keys)
            deliveries = share_delivery.seal_all(config, share_texts, recipients) \
                if recipients else None
            facts = {"delivery": "encrypted" if deliveries else "plaintext",
                     **(share_delivery.plan_keys(recipients) if recipients else {})}
            now = self.clock.now()
            try:
                # Seal, keyring and root token land together: a crash can never leave a
                # store initialized with shares nobody was shown, or without a root token.
                with self.engine.begin() as conn:
                    insert_entry(conn, SHAMIR_ENTRY, config.to_json(), now)
                    self.custodian_registry.record_issued(conn, config, now, deliveries)
                    share_delivery.register_given(conn, recipients, now, "init")
                    insert_entry(conn, KEYRING_ENTRY, seal_keyring(root_key, keyring), now)
                    insert_entry(conn, AUDIT_KEYS_ENTRY, Barrier(keyring).encrypt(
                        AUDIT_KEYS_ENTRY, AuditKeys.generate_material()), now)
                    token, _identity = self.tokens.create_root(created_by="init",
                                                               connection=conn)
                    if ctx is not None:
                        write_audit_in(self.audit, conn, ctx, operation="sys:init", key=None,
                                       key_version=None, now=now, detail=facts)
            except IntegrityError as exc:  # another worker initialized it first
                self._load_seal_config()
                raise Conflict("the service is already initialized") from exc
            finally:  # unseal opens them again, from the shares
                wipe(root_key)
                keyring.wipe()
            self._seal_config = config
        self.peers.announce({"op": "init"})
        handed = ({"delivery": "encrypted",
                   "encrypted_shares": share_delivery.describe(config, deliveries)}
                  if deliveries else {"delivery": "plaintext", "shares": share_texts})
        return {
            **handed,
            "root_token": token,
            "commitments": [c.hex() for c in config.commitments],
            "threshold": config.threshold,
            "custodians": list(config.names),
            "generation": config.generation,
            "seal_fingerprint": config.fingerprint,
        }

    def unseal(self, share: str | bytearray) -> SealStatus:
        """Submit one share; while the round is open the answer carries its ``nonce``
        (to submitters only: resetting the progress needs it).

        A ``bytearray`` share (the unseal route reads it from the request body) is the
        caller's to wipe; here the share is parsed into a buffer that the unseal
        progress wipes when its round ends.
        """
        config = self.initialized_seal_config()
        if not self.sealed:
            return self.seal_status()
        if self.peers.active:  # the supervisor holds progress for every worker
            # It takes the share as JSON text: that str is a copy nobody wipes.
            text = share if isinstance(share, str) else share.decode("ascii", "replace")
            answer = self.peers.unseal({"share": text})
            self.custodian_registry.share_verified(config, text)
            # The supervisor's answer crosses processes as JSON: its progress counts.
            return replace(self.seal_status(answer.get("nonce") or None),
                           progress=int(answer["progress"]))
        checked = verified_share(config, share)
        root_key = self.progress.add(config, checked)  # it wipes the share's value
        self.custodian_registry.share_verified(config, checked)  # (its index)
        if root_key is not None:
            try:
                self._open_barrier(root_key)
            except BaseException:
                wipe(root_key)
                raise
        return self.seal_status(self.progress.nonce or None)

    def _open_barrier(self, root_key: bytes | bytearray) -> None:
        """Open the barrier and keep the root key: a bytearray is kept as it is (this core
        wipes it on seal), a ``bytes`` key is copied into one (the caller's copy stays)."""
        with self.engine.connect() as conn:
            blob = get_entry(conn, KEYRING_ENTRY)
            epoch = read_epoch(conn)  # a seal of the cluster from now on is newer
        if blob is None:
            raise Sealed("the barrier keyring is missing from storage")
        keyring = open_keyring(root_key, blob)
        barrier = Barrier(keyring)
        self.audit_trail.open(barrier)
        with self.write_lock:
            self.opened_epoch = epoch
            self._barrier = barrier
            self._root_key = root_key if isinstance(root_key, bytearray) else bytearray(root_key)

    def open_with_root_key(self, root_key: bytes) -> None:
        """Unseal with a root key a seal other than the shares gave (passphrase, HSM, KMS).

        A wrong key fails here (the keyring does not authenticate) and nothing opens;
        a right one opens this process and every sibling worker.
        """
        if not self.sealed:
            return
        self._open_barrier(root_key)
        self.progress.reset()
        self.peers.announce({"op": "open", "root_key": encode_key(root_key)})

    def adopt_root_key(self, root_key: bytes | bytearray, *, tell_nodes: bool = True) -> None:
        """A committed rekey rotated the root key: use it here, then in every sibling;
        other nodes (``tell_nodes``) hear only that the keyring changed, never the key."""
        self._adopt_root_key(root_key)
        self.peers.announce({"op": "root", "root_key": encode_key(bytes(root_key))})
        if tell_nodes:
            self.peers.announce({"op": "keyring"})

    def _adopt_root_key(self, root_key: bytes | bytearray) -> None:
        """Take the rotated root key if it opens the stored keyring (it must: the rekey
        re-sealed the keyring under it in the same transaction as the seal entry).

        The keyring's terms did not change, so the barrier in use stays as it is; only
        the root key that backups and new seals are made from is replaced.
        """
        self._load_seal_config()
        if self.sealed:
            return
        with self.engine.connect() as conn:
            blob = get_entry(conn, KEYRING_ENTRY)
        if blob is None:
            raise Sealed("the barrier keyring is missing from storage")
        open_keyring(root_key, blob).wipe()  # BarrierError if it is not the stored root key
        with self.write_lock:
            if self._barrier is not None:
                # Kept in a buffer of its own, like the one unseal gave (wiped on seal);
                # the retired key is overwritten, not just dropped.
                retired, self._root_key = self._root_key, bytearray(root_key)
                if isinstance(retired, bytearray):
                    wipe(retired)

    def reset_unseal(self, nonce: str | None) -> SealStatus:
        """Discard the unseal progress; ``Forbidden`` without the round's nonce."""
        if self.peers.active:
            self.peers.unseal({"reset": True, "nonce": nonce})
        self.progress.reset_with(nonce)
        return self.seal_status()

    def seal(self) -> SealStatus:
        """Drop the barrier, every cached key object and any unseal progress (every worker).

        The audit log is checkpointed first (signed), so what happened up to the
        seal is pinned under a signature.
        """
        self._seal_here(checkpoint=True)
        self.peers.announce({"op": "seal"})
        return self.seal_status()

    def _seal_here(self, *, checkpoint: bool = False) -> None:
        if checkpoint and not self.sealed:
            try:  # sign where the log stands; sealing must go on even if this fails
                self.audit_trail.checkpoint()
            except Exception as exc:
                log.error("audit checkpoint on seal failed (%s)", type(exc).__name__)
        with self.write_lock:
            self.audit_trail.close()
            # Overwrite, then drop: a dropped key would stay readable in freed memory.
            if self._barrier is not None:
                self._barrier.wipe()
            if isinstance(self._root_key, bytearray):
                wipe(self._root_key)
            self._barrier = None
            self._root_key = None
            self.opened_epoch = None
            self.release_usage()
            self.keys.clear()
            self.access_keys.clear()  # no access key secret stays in memory once sealed
            self.progress.reset()

    def release_usage(self) -> None:
        """Give back unused reserved usage counts (a seal or a clean shutdown): exact counts.

        Never stops a seal or a shutdown: on failure the counts stay upper bounds.
        """
        try:
            self.keys.release_unused()
        except Exception as exc:
            log.error("giving back reserved usage counts failed (%s)", type(exc).__name__)

    def key_changed(self, key: Key) -> None:
        """Install a key's new revision here and tell sibling workers to reload it."""
        self.keys.refresh(key)
        self.peers.announce({"op": "key", "id": key.id})

    def _changed(self, event: ChangeEvent) -> None:
        """A committed change: install it here, then tell the sibling workers."""
        wire = event.to_wire()
        self.apply_peer_event(wire)
        self.peers.announce(wire)

    def apply_peer_event(self, event: dict[str, Any]) -> None:
        """A change made by a sibling worker (or the supervisor), applied to this process."""
        op = event.get("op")
        if op == "open":
            self._open_barrier(decode_key(event["root_key"]))
        elif op == "seal":
            self._seal_here()
        elif op in ("init", "seal-config"):
            self._load_seal_config()
        elif op == "root":  # a rekey on a sibling rotated the root key
            self._adopt_root_key(decode_key(event["root_key"]))
        elif op == "key":
            key_id = str(event["id"])
            self.keys.note_change(key_id)
            # A key this process has not loaded needs nothing: it is read when first
            # used. Reading every changed key on every node made each change cost N-1
            # reads across a cluster (measured: node CPU per create 2.2 ms on one node,
            # 3.8 on two, 5.2 on three).
            if self.sealed or self.keys.cached_by_id(key_id) is None:
                return
            with self.engine.connect() as conn:
                key = keys_repo.get_key(conn, key_id=key_id)
            if key is not None:
                self.keys.refresh(key)
        elif op == "token":
            self.tokens.forget(str(event["accessor"]))
        elif op == "access-key":
            self.access_keys.forget(str(event["accessor"]))
        elif op == "policies":
            self.policies.invalidate()
        elif op == "audit-sinks":
            self.audit_sinks.reload()
        elif op == "seal-attempts":
            self.seal_set.note_attempts(event["attempts"])

    def custodians(self) -> CustodianStatus:
        """Every custodian, when each last showed their share, and the quorum margin."""
        config = self.initialized_seal_config()
        return replace(self.custodian_registry.status(config),
                       seal_fingerprint=self.seal_fingerprint(config))

    def seal_fingerprint(self, config: ShamirSealConfig) -> str | None:
        """What backups of this store are pinned to (``seal.fingerprint``).

        Stores made before the root key id was recorded compute it from the root
        key while unsealed; sealed, they have none to show.
        """
        with self.write_lock:  # not while sealing wipes the key
            if config.root_id or self._root_key is None:
                return config.fingerprint
            return replace(config, root_id=root_key_id(self._root_key)).fingerprint
