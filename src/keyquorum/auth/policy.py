"""Where policies live and how a request is judged against them.

Deny by default: a request is allowed only if some rule of the caller's policies
allows it and no rule denies it (a matching deny always wins, whatever the order
or specificity). A rule matches when it names the operation (or ``*``), its glob
covers the key, and its conditions (``conditions.py``) apply to the request. The
built-in ``root`` policy allows everything; the built-in roles (``roles.py``) are
present on every server; neither can be written or deleted.

Evaluation is on the hot path of every request, so ``Authorizer`` compiles each
distinct tuple of policy names once and remembers, per (generation, policies,
operation, key), either the final answer or — only when a matching rule has
conditions — the few rules whose conditions must be checked against the
request's facts. Both caches are tagged with the store's generation and so die
on any policy change. ``explain`` gives the full answer with the deciding rule
(for simulation and denial messages), off the hot path.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from keyquorum.auth.conditions import Conditions
from keyquorum.auth.globs import compile_glob, matches_everything
from keyquorum.auth.identity import ROOT_POLICY_NAME, Identity
from keyquorum.auth.operations import ALL_OPERATIONS
from keyquorum.auth.roles import BUILTIN_ROLE_NAMES, BUILTIN_ROLES
from keyquorum.auth.rules import (
    ALLOW,
    DENY,
    MAX_RULES,
    ROOT_POLICY,
    Policy,
    Rule,
    validate_policy_name,
)
from keyquorum.auth.rules import parse_policy as parse_rules_policy
from keyquorum.clock import Clock
from keyquorum.errors import Conflict, Forbidden, InvalidRequest, NotFound
from keyquorum.storage.schema import policies as policies_table

__all__ = [
    "ALLOW",
    "DENY",
    "MAX_RULES",
    "ROOT_POLICY",
    "Authorizer",
    "Decision",
    "Policy",
    "PolicyStore",
    "Rule",
    "RuleRef",
    "UnmetRule",
    "parse_policy",
    "validate_policy_name",
]

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
                    self._upsert(connection, policy.name, rules, now)
            except IntegrityError as exc:
                raise Conflict("the policy changed concurrently; retry") from exc
            return
        try:
            with self._engine.begin() as own:
                self._upsert(own, policy.name, rules, now)
        except IntegrityError:  # a concurrent put inserted it first: ours replaces it
            with self._engine.begin() as own:
                self._upsert(own, policy.name, rules, now)
        self._invalidate()

    @staticmethod
    def _upsert(connection: Connection, name: str, rules: str, now: float) -> None:
        changed = connection.execute(
            update(policies_table).where(policies_table.c.name == name)
            .values(rules=rules, updated_at=now)).rowcount
        if not changed:
            connection.execute(insert(policies_table).values(
                name=name, rules=rules, created_at=now, updated_at=now))

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
        statement = delete(policies_table).where(policies_table.c.name == name)
        if connection is not None:
            if not connection.execute(statement).rowcount:
                raise NotFound(f"no policy named {name!r}")
            return
        with self._engine.begin() as own:
            removed = own.execute(statement).rowcount
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
            if name in BUILTIN_ROLES:  # written before the role existed: the role wins
                log.warning("stored policy %r has a built-in role's name and is ignored", name)
                continue
            try:
                loaded[name] = parse_rules_policy(name, {"rules": json.loads(rules)})
            except (InvalidRequest, Conflict, ValueError):
                # Unreadable policy grants nothing (deny by default) rather than failing all.
                log.error("stored policy %r is invalid and is ignored", name)
        return loaded



@dataclass(frozen=True, slots=True)
class RuleRef:
    """A rule and where it is: which policy, which line (0-based)."""

    policy: str
    index: int
    rule: Rule

    def to_json(self) -> dict[str, Any]:
        return {"policy": self.policy, "index": self.index, **self.rule.to_json()}

    def __str__(self) -> str:
        return f"policy {self.policy} rule {self.index}"


@dataclass(frozen=True, slots=True)
class UnmetRule:
    """An allow rule that names the operation and key but whose conditions failed."""

    ref: RuleRef
    failed: tuple[str, ...]  # condition names: specs, context_keys, source

    def to_json(self) -> dict[str, Any]:
        return {**self.ref.to_json(), "failed": list(self.failed)}


@dataclass(frozen=True, slots=True)
class Decision:
    """The full answer: allowed or not, and the rule that explains it.

    ``rule`` is the most specific matching deny when one matches (deny wins), else
    the most specific matching allow, else ``None`` (denied by default; then
    ``unmet`` lists the allow rules that would have applied but for their conditions).
    """

    allowed: bool
    rule: RuleRef | None
    unmet: tuple[UnmetRule, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"allowed": self.allowed,
                "rule": self.rule.to_json() if self.rule is not None else None,
                "unmet": [u.to_json() for u in self.unmet]}


_ROOT_DECISION = Decision(True, RuleRef(ROOT_POLICY_NAME, 0, ROOT_POLICY.rules[0]))


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    operations: frozenset[str]
    pattern: re.Pattern[str]
    covers_keyless: bool
    deny: bool
    conditions: Conditions | None
    ref: RuleRef

    def names(self, operation: str, key_name: str | None) -> bool:
        """Whether the rule is about this operation on this key (conditions aside)."""
        if operation not in self.operations and ALL_OPERATIONS not in self.operations:
            return False
        if key_name is None:
            return self.covers_keyless
        return self.pattern.match(key_name) is not None


@dataclass(frozen=True, slots=True)
class _Pending:
    """A cached half-decision: the conditioned rules still to check against the request."""

    allowed_without: bool  # an unconditioned allow matched
    denies: tuple[_CompiledRule, ...]
    allows: tuple[_CompiledRule, ...]

    def allowed(self, spec: str | None, context: Mapping[str, str] | None,
                client: str | None) -> bool:
        for rule in self.denies:
            assert rule.conditions is not None
            if not rule.conditions.unmet(spec=spec, context=context, client=client,
                                         unknown_holds=True):
                return False
        if self.allowed_without:
            return True
        for rule in self.allows:
            assert rule.conditions is not None
            if not rule.conditions.unmet(spec=spec, context=context, client=client,
                                         unknown_holds=False):
                return True
        return False


class Authorizer:
    """Decides whether an identity may do an operation on a key; deny by default.

    The request's facts are keyword arguments: ``client`` (the address, already
    resolved through trusted proxies), ``context`` (the encryption context of a
    crypto operation or batch item; ``None`` is an empty one) and ``spec`` (on
    create). They matter only to rules with conditions; a call site that cannot
    give a fact leaves it ``None``, which conditions treat as unknown (fail closed).
    """

    def __init__(self, policy_store: PolicyStore, *, cache_size: int = 65536) -> None:
        self._store = policy_store
        self._seen_generation = policy_store.generation
        # Keys carry the store generation, so an entry computed from old policies
        # can never answer after a change, even if it lands after the clear below.
        self._decide = lru_cache(maxsize=cache_size)(self._decide_uncached)
        self._compile = lru_cache(maxsize=1024)(self._compile_uncached)

    def authorize(self, identity: Identity, operation: str, key_name: str | None, *,
                  client: str | None = None, context: Mapping[str, str] | None = None,
                  spec: str | None = None) -> None:
        """Return if allowed, else raise ``Forbidden`` naming the operation, key and rule."""
        if identity.is_root:
            return
        # ``allowed`` inlined: this runs for every item of every request.
        verdict = self._decide(self._generation(), identity.policies, operation, key_name)
        if verdict is True or (verdict is not False and verdict.allowed(spec, context, client)):
            return
        target = f" {key_name}" if key_name is not None else ""
        message = f"token may not {operation}{target}"
        # Off the hot path: only a refusal pays for the explanation.
        decision = self.explain(identity.policies, operation, key_name, client=client,
                                context=context, spec=spec)
        if decision.rule is not None and not decision.allowed:
            message += f" (denied by {decision.rule})"
        elif decision.unmet:
            first = decision.unmet[0]
            # Names which condition failed, never the ranges or keys it wants.
            message += (f" ({first.ref} would allow it, but its conditions are not met: "
                        f"{', '.join(first.failed)})")
        raise Forbidden(message)

    def allowed(self, identity: Identity, operation: str, key_name: str | None, *,
                client: str | None = None, context: Mapping[str, str] | None = None,
                spec: str | None = None) -> bool:
        if identity.is_root:
            return True
        verdict = self._decide(self._generation(), identity.policies, operation, key_name)
        if isinstance(verdict, bool):
            return verdict
        return verdict.allowed(spec, context, client)

    def explain(self, policies: Sequence[str], operation: str, key_name: str | None, *,
                client: str | None = None, context: Mapping[str, str] | None = None,
                spec: str | None = None) -> Decision:
        """The decision for a holder of ``policies``, with the rule that explains it."""
        names = tuple(policies)
        if ROOT_POLICY_NAME in names:
            return _ROOT_DECISION
        deny: _CompiledRule | None = None
        allow: _CompiledRule | None = None
        unmet: list[UnmetRule] = []
        for rule in self._compile(self._generation(), names):
            if not rule.names(operation, key_name):
                continue
            if rule.conditions is not None:
                failed = rule.conditions.unmet(spec=spec, context=context, client=client,
                                               unknown_holds=rule.deny)
                if failed:
                    if not rule.deny:
                        unmet.append(UnmetRule(rule.ref, failed))
                    continue
            if rule.deny:
                deny = _more_specific(deny, rule)
            else:
                allow = _more_specific(allow, rule)
        if deny is not None:
            return Decision(False, deny.ref)
        if allow is not None:
            return Decision(True, allow.ref)
        return Decision(False, None, tuple(unmet))

    def _generation(self) -> int:
        generation = self._store.generation
        if generation != self._seen_generation:
            self._seen_generation = generation
            self._decide.cache_clear()
            self._compile.cache_clear()
        return generation

    def _decide_uncached(self, generation: int, names: tuple[str, ...], operation: str,
                         key_name: str | None) -> bool | _Pending:
        allowed = False
        denies: list[_CompiledRule] = []
        allows: list[_CompiledRule] = []
        for rule in self._compile(generation, names):
            if not rule.names(operation, key_name):
                continue
            if rule.conditions is not None:
                (denies if rule.deny else allows).append(rule)
            elif rule.deny:
                return False  # an unconditioned matching deny wins over every allow
            else:
                allowed = True
        if not denies and (allowed or not allows):
            return allowed  # no condition can change the answer: cache it whole
        return _Pending(allowed, tuple(denies), tuple(allows))

    def _compile_uncached(self, _generation: int,
                          names: tuple[str, ...]) -> tuple[_CompiledRule, ...]:
        compiled: list[_CompiledRule] = []
        for name in names:
            policy = self._store.find(name)
            if policy is None:  # a missing policy grants nothing
                continue
            compiled.extend(
                _CompiledRule(frozenset(rule.operations), compile_glob(rule.keys),
                              matches_everything(rule.keys), rule.effect == DENY,
                              rule.conditions, RuleRef(name, index, rule))
                for index, rule in enumerate(policy.rules))
        return tuple(compiled)


def _more_specific(best: _CompiledRule | None, rule: _CompiledRule) -> _CompiledRule:
    """The more specific of two matching rules; the earlier one on a tie."""
    if best is None or rule.ref.rule.specificity > best.ref.rule.specificity:
        return rule
    return best
