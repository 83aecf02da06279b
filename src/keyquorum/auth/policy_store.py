"""Where policies live: the ``policies`` table behind an in-memory snapshot.

The built-in ``root`` policy and the built-in roles (``roles.py``) are present on
every server and can be neither written nor deleted. A stored policy that no longer
parses grants nothing (deny by default) rather than failing every request. How a
request is judged against policies is ``authorizer.py``; the SQL is
``storage/policies_repo.py``.
"""

from __future__ import annotations

import json
import logging
import threading
import time

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from keyquorum.auth.identity import ROOT_POLICY_NAME
from keyquorum.auth.roles import BUILTIN_ROLE_NAMES, BUILTIN_ROLES
from keyquorum.auth.rules import ROOT_POLICY, Policy
from keyquorum.auth.rules import parse_policy as parse_rules_policy
from keyquorum.clock import Clock
from keyquorum.errors import Conflict, InvalidRequest, NotFound
from keyquorum.storage import policies_repo

__all__ = ["PolicyStore", "parse_policy"]

log = logging.getLogger(__name__)


def parse_policy(name: str, body: object) -> Policy:
    """Validate a policy body for writing; ``root`` and the built-in roles are a conflict."""
    return parse_rules_policy(name, body, reserved=BUILTIN_ROLE_NAMES)


class PolicyStore:
    """Policies in the ``policies`` table, all cached in memory and reloaded after writes.

    Policies are few and read on every request, so the whole table is one
    snapshot. ``generation`` moves on every write in this process, and when the
    snapshot is older than ``refresh_after`` seconds (so a change made by another
    node is seen within that bound); caches built on policies (the authorizer's)
    compare it to know when to drop themselves.
    """

    def __init__(self, engine: Engine, clock: Clock, *,
                 refresh_after: float = 10.0) -> None:
        self._engine = engine
        self._clock = clock
        self._refresh_after = refresh_after
        self._lock = threading.Lock()
        self._snapshot: dict[str, Policy] | None = None
        self._loaded_at = 0.0  # time.monotonic(): freshness of the snapshot
        self._generation = 0

    @property
    def generation(self) -> int:
        """Changes whenever what ``find`` answers may have changed."""
        if self._snapshot is not None \
                and time.monotonic() - self._loaded_at > self._refresh_after:
            self._invalidate()
        return self._generation

    def put(self, policy: Policy, connection: Connection | None = None) -> None:
        """Create or replace ``policy``; built-in policies are refused.

        With ``connection`` the write is part of the caller's unit of work, which
        drops the caches (``invalidate``) once it has committed.
        """
        if policy.name == ROOT_POLICY_NAME or policy.name in BUILTIN_ROLES:
            raise Conflict(f"the {policy.name} policy is built in and cannot be changed")
        rules = json.dumps([rule.to_json() for rule in policy.rules], separators=(",", ":"))
        now = self._clock.now()
        if connection is not None:
            try:
                with connection.begin_nested():
                    policies_repo.upsert_policy(connection, policy.name, rules, now)
            except IntegrityError as exc:
                raise Conflict("the policy changed concurrently; retry") from exc
            return
        try:
            with self._engine.begin() as own:
                policies_repo.upsert_policy(own, policy.name, rules, now)
        except IntegrityError:  # a concurrent put inserted it first: ours replaces it
            with self._engine.begin() as own:
                policies_repo.upsert_policy(own, policy.name, rules, now)
        self._invalidate()

    def get(self, name: str) -> Policy:
        """The policy called ``name`` (built-ins included), or ``NotFound``."""
        policy = self.find(name)
        if policy is None:
            raise NotFound(f"no policy named {name!r}")
        return policy

    def find(self, name: str) -> Policy | None:
        """Like ``get`` but ``None`` when missing (the authorizer ignores missing policies)."""
        if name == ROOT_POLICY_NAME:
            return ROOT_POLICY
        builtin = BUILTIN_ROLES.get(name)
        if builtin is not None:
            return builtin
        return self._policies().get(name)

    def list(self) -> list[Policy]:
        """Every policy: ``root`` first, then the built-in roles, then the rest by name."""
        stored = self._policies()
        return [ROOT_POLICY, *(BUILTIN_ROLES[name] for name in sorted(BUILTIN_ROLES)),
                *(stored[name] for name in sorted(stored))]

    def delete(self, name: str, connection: Connection | None = None) -> None:
        """Delete a stored policy (with ``connection``: in the caller's unit of work)."""
        if name == ROOT_POLICY_NAME or name in BUILTIN_ROLES:
            raise Conflict(f"the {name} policy is built in and cannot be deleted")
        if connection is not None:
            if not policies_repo.delete_policy(connection, name):
                raise NotFound(f"no policy named {name!r}")
            return
        with self._engine.begin() as own:
            removed = policies_repo.delete_policy(own, name)
        if not removed:
            raise NotFound(f"no policy named {name!r}")
        self._invalidate()

    def invalidate(self) -> None:
        """Drop every cache built on policies now (e.g. on a change notice from another node)."""
        self._invalidate()

    def _invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._snapshot = None

    def _policies(self) -> dict[str, Policy]:
        snapshot = self._snapshot
        if snapshot is not None and time.monotonic() - self._loaded_at <= self._refresh_after:
            return snapshot
        with self._lock:
            if self._snapshot is not None:  # stale: drop every cache built on it too
                self._generation += 1
                self._snapshot = None
            generation = self._generation
        loaded_at = time.monotonic()
        loaded = self._load()
        with self._lock:
            # Install only if no write happened while we read: else a stale read
            # could overwrite the invalidation and live until the next refresh.
            if self._generation == generation:
                self._snapshot = loaded
                self._loaded_at = loaded_at
        return loaded

    def _load(self) -> dict[str, Policy]:
        with self._engine.connect() as connection:
            rows = policies_repo.list_policies(connection)
        loaded: dict[str, Policy] = {}
        for row in rows:
            if row.name in BUILTIN_ROLES:  # written before the role existed: the role wins
                log.warning("stored policy %r has a built-in role's name and is ignored",
                            row.name)
                continue
            try:
                loaded[row.name] = parse_rules_policy(row.name, {"rules": json.loads(row.rules)})
            except (InvalidRequest, Conflict, ValueError):
                # Unreadable policy grants nothing (deny by default) rather than failing all.
                log.error("stored policy %r is invalid and is ignored", row.name)
        return loaded
