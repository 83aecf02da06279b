"""How a request is judged against policies: deny by default.

A request is allowed only if some rule of the caller's policies allows it and no
rule denies it (a matching deny always wins, whatever the order or specificity).
A rule matches when it names the operation (or ``*``), its glob covers the key,
and its conditions (``conditions.py``) apply to the request. The policies come
from ``policy_store.py``; the built-in ``root`` policy allows everything.

Evaluation is on the hot path of every request, so ``Authorizer`` compiles each
distinct tuple of policy names once and remembers, per (generation, policies,
operation, key), either the final answer or — only when a matching rule has
conditions — the few rules whose conditions must be checked against the
request's facts. Both caches are tagged with the store's generation and so die
on any policy change. ``explain`` gives the full answer with the deciding rule
(for simulation and denial messages), off the hot path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from keyquorum.auth.conditions import Conditions
from keyquorum.auth.globs import compile_glob, matches_everything
from keyquorum.auth.identity import ROOT_POLICY_NAME, Identity
from keyquorum.auth.operations import ALL_OPERATIONS
from keyquorum.auth.policy_store import PolicyStore
from keyquorum.auth.rules import DENY, ROOT_POLICY, Rule
from keyquorum.errors import Forbidden

__all__ = ["Authorizer", "Decision", "RuleRef", "UnmetRule"]


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

    def grants_anywhere(self, identity: Identity, operation: str) -> bool:
        """Whether some allow rule of the identity's policies names ``operation``, on any key.

        Conditions and denies aside: this answers "could this token ever list?", so a
        list filtered to nothing can be told apart from a token with no ``list`` at all.
        """
        if identity.is_root:
            return True
        return any(not rule.deny and (operation in rule.operations
                                      or ALL_OPERATIONS in rule.operations)
                   for rule in self._compile(self._generation(), identity.policies))

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
