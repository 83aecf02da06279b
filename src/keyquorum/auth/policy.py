"""Policies: named rule lists that say which operations a token may do on which keys.

Deny by default: a request is allowed only if some rule of the caller's policies
allows it and no rule denies it (a matching deny always wins, whatever the order).
The built-in ``root`` policy allows everything and cannot be written or deleted.

Evaluation is on the hot path of every request, so ``Authorizer`` compiles each
distinct tuple of policy names once and remembers decisions in a bounded LRU;
both are tagged with the store's generation and so die on any policy change.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from keyquorum.auth.globs import compile_glob, matches_everything, validate_glob
from keyquorum.auth.identity import ROOT_POLICY_NAME, Identity
from keyquorum.auth.operations import ALL_OPERATIONS, OPERATIONS
from keyquorum.clock import Clock
from keyquorum.errors import Conflict, Forbidden, InvalidRequest, NotFound
from keyquorum.storage.schema import policies as policies_table

log = logging.getLogger(__name__)

ALLOW = "allow"
DENY = "deny"
MAX_RULES = 256
_NAME = re.compile(r"[a-z0-9._-]{1,64}")
_RULE_FIELDS = frozenset({"keys", "operations", "effect"})


def validate_policy_name(name: object) -> str:
    """Return ``name`` if it is a valid policy name (``[a-z0-9._-]{1,64}``), else raise."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in (".", ".."):
        raise InvalidRequest(
            f"bad policy name {name!r}: 1-64 characters of a-z 0-9 . _ - (not '.' or '..')")
    return name


@dataclass(frozen=True, slots=True)
class Rule:
    """One line of a policy: ``effect`` the ``operations`` on keys matching ``keys``."""

    keys: str
    operations: tuple[str, ...]
    effect: str = ALLOW

    def to_json(self) -> dict[str, Any]:
        return {"keys": self.keys, "operations": list(self.operations), "effect": self.effect}


@dataclass(frozen=True, slots=True)
class Policy:
    """A named, validated list of rules."""

    name: str
    rules: tuple[Rule, ...]

    def to_json(self) -> dict[str, Any]:
        """The body form accepted by ``parse_policy`` (and answered by GET /v1/policies)."""
        return {"rules": [rule.to_json() for rule in self.rules]}


ROOT_POLICY = Policy(ROOT_POLICY_NAME, (Rule("**", (ALL_OPERATIONS,), ALLOW),))
"""What ``root`` means, shown to operators; the authorizer short-circuits it anyway."""


def parse_policy(name: str, body: object) -> Policy:
    """Validate a policy body strictly and return it; every mistake names the broken rule.

    Unknown fields and operations are errors rather than ignored, because a policy
    that silently means less (or more) than its author thinks is a security bug.
    """
    validate_policy_name(name)
    if name == ROOT_POLICY_NAME:
        raise Conflict("the root policy is built in and cannot be changed")
    if not isinstance(body, Mapping):
        raise InvalidRequest('a policy must be an object like {"rules": [...]}')
    unknown = set(body) - {"rules"}
    if unknown:
        raise InvalidRequest(f"unknown policy field(s): {', '.join(sorted(map(str, unknown)))}")
    raw_rules = body.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise InvalidRequest("a policy needs a non-empty list of rules")
    if len(raw_rules) > MAX_RULES:
        raise InvalidRequest(f"a policy has at most {MAX_RULES} rules")
    return Policy(name, tuple(_parse_rule(i, raw) for i, raw in enumerate(raw_rules)))


def _parse_rule(index: int, raw: object) -> Rule:
    where = f"rule {index}"
    if not isinstance(raw, Mapping):
        raise InvalidRequest(f"{where}: a rule must be an object with keys and operations")
    unknown = set(raw) - _RULE_FIELDS
    if unknown:
        raise InvalidRequest(f"{where}: unknown field(s): {', '.join(sorted(map(str, unknown)))}")
    if "keys" not in raw:
        raise InvalidRequest(f"{where}: keys (a glob) is required")
    try:
        keys = validate_glob(raw["keys"])
    except InvalidRequest as exc:
        raise InvalidRequest(f"{where}: {exc.message}") from None
    operations = raw.get("operations")
    if not isinstance(operations, list) or not operations:
        raise InvalidRequest(f"{where}: operations must be a non-empty list")
    seen: dict[str, None] = {}
    for operation in operations:
        if not isinstance(operation, str) or (
                operation not in OPERATIONS and operation != ALL_OPERATIONS):
            raise InvalidRequest(f"{where}: unknown operation {operation!r}")
        seen[operation] = None
    effect = raw.get("effect", ALLOW)
    if effect not in (ALLOW, DENY):
        raise InvalidRequest(f"{where}: effect must be 'allow' or 'deny'")
    return Rule(keys, tuple(seen), effect)


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

    def put(self, policy: Policy) -> None:
        """Create or replace ``policy``."""
        if policy.name == ROOT_POLICY_NAME:
            raise Conflict("the root policy is built in and cannot be changed")
        rules = json.dumps([rule.to_json() for rule in policy.rules], separators=(",", ":"))
        now = self._clock.now()
        try:
            self._upsert(policy.name, rules, now)
        except IntegrityError:  # a concurrent put inserted it first: ours replaces it
            self._upsert(policy.name, rules, now)
        self._invalidate()

    def _upsert(self, name: str, rules: str, now: float) -> None:
        with self._engine.begin() as connection:
            changed = connection.execute(
                update(policies_table).where(policies_table.c.name == name)
                .values(rules=rules, updated_at=now)).rowcount
            if not changed:
                connection.execute(insert(policies_table).values(
                    name=name, rules=rules, created_at=now, updated_at=now))

    def get(self, name: str) -> Policy:
        """The policy called ``name`` (``root`` included), or ``NotFound``."""
        policy = self.find(name)
        if policy is None:
            raise NotFound(f"no policy named {name!r}")
        return policy

    def find(self, name: str) -> Policy | None:
        """Like ``get`` but ``None`` when missing (the authorizer ignores missing policies)."""
        if name == ROOT_POLICY_NAME:
            return ROOT_POLICY
        return self._policies().get(name)

    def list(self) -> list[Policy]:
        """Every policy, ``root`` first, the rest by name."""
        stored = self._policies()
        return [ROOT_POLICY, *(stored[name] for name in sorted(stored))]

    def delete(self, name: str) -> None:
        if name == ROOT_POLICY_NAME:
            raise Conflict("the root policy is built in and cannot be deleted")
        with self._engine.begin() as connection:
            removed = connection.execute(
                delete(policies_table).where(policies_table.c.name == name)).rowcount
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
            rows = connection.execute(
                select(policies_table.c.name, policies_table.c.rules)).all()
        loaded: dict[str, Policy] = {}
        for name, rules in rows:
            try:
                loaded[name] = parse_policy(name, {"rules": json.loads(rules)})
            except (InvalidRequest, Conflict, ValueError):
                # Unreadable policy grants nothing (deny by default) rather than failing all.
                log.error("stored policy %r is invalid and is ignored", name)
        return loaded


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    operations: frozenset[str]
    pattern: re.Pattern[str]
    covers_keyless: bool
    deny: bool


class Authorizer:
    """Decides whether an identity may do an operation on a key; deny by default."""

    def __init__(self, policy_store: PolicyStore, *, cache_size: int = 65536) -> None:
        self._store = policy_store
        self._seen_generation = policy_store.generation
        # Keys carry the store generation, so an entry computed from old policies
        # can never answer after a change, even if it lands after the clear below.
        self._decide = lru_cache(maxsize=cache_size)(self._decide_uncached)
        self._compile = lru_cache(maxsize=1024)(self._compile_uncached)

    def authorize(self, identity: Identity, operation: str, key_name: str | None) -> None:
        """Return if allowed, else raise ``Forbidden`` naming the operation and key."""
        if not self.allowed(identity, operation, key_name):
            target = f" {key_name}" if key_name is not None else ""
            raise Forbidden(f"token may not {operation}{target}")

    def allowed(self, identity: Identity, operation: str, key_name: str | None) -> bool:
        if identity.is_root:
            return True
        generation = self._store.generation
        if generation != self._seen_generation:
            self._seen_generation = generation
            self._decide.cache_clear()
            self._compile.cache_clear()
        return self._decide(generation, identity.policies, operation, key_name)

    def _decide_uncached(self, generation: int, names: tuple[str, ...], operation: str,
                         key_name: str | None) -> bool:
        allowed = False
        for rule in self._compile(generation, names):
            if operation not in rule.operations and ALL_OPERATIONS not in rule.operations:
                continue
            if key_name is None:
                if not rule.covers_keyless:
                    continue
            elif rule.pattern.match(key_name) is None:
                continue
            if rule.deny:
                return False  # any matching deny wins over every allow
            allowed = True
        return allowed

    def _compile_uncached(self, _generation: int,
                          names: tuple[str, ...]) -> tuple[_CompiledRule, ...]:
        compiled: list[_CompiledRule] = []
        for name in names:
            policy = self._store.find(name)
            if policy is None:  # a missing policy grants nothing
                continue
            compiled.extend(
                _CompiledRule(frozenset(rule.operations), compile_glob(rule.keys),
                              matches_everything(rule.keys), rule.effect == DENY)
                for rule in policy.rules)
        return tuple(compiled)
