"""Rule conditions: facts of a request that a policy rule can require.

A rule may carry ``conditions`` — allowed key specs on create, encryption-context
keys that must be present, and client address ranges. They say *when the rule
applies*, the same way for both effects:

- an ``allow`` rule whose conditions are not met allows nothing;
- a ``deny`` rule applies only when its conditions hold.

A condition the server cannot check for a request (no client address is known,
no valid spec was given) is *unknown*, and unknown fails closed both ways: it
does not satisfy an allow rule, and it does trigger a deny rule. So a missing
fact can never widen what a token may do.

Each condition is accepted only on operations whose requests carry that fact
(``specs`` on ``create``; ``context_keys`` on the operations that take an
encryption context); a rule that mixes others is refused when the policy is
written, because "allowed only with context key tenant" on an operation that
never has a context would silently mean "never" — or, on a deny rule, "always".
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from keyquorum.errors import InvalidRequest
from keyquorum.keys.specs import SPECS

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

CONDITION_FIELDS = ("specs", "context_keys", "source")
SPEC_OPERATIONS = frozenset({"create"})
"""Operations whose request names a key spec."""
CONTEXT_OPERATIONS = frozenset({"encrypt", "decrypt", "reencrypt", "datakey", "decapsulate"})
"""Operations whose request (or each batch item) carries an encryption context."""
MAX_CONDITION_ENTRIES = 64
MAX_CONTEXT_KEY_LENGTH = 256


@dataclass(frozen=True, slots=True)
class Conditions:
    """What a request must show for its rule to apply; ``None`` fields are not checked."""

    specs: tuple[str, ...] | None = None
    context_keys: tuple[str, ...] | None = None
    source: tuple[IPNetwork, ...] | None = None

    @property
    def count(self) -> int:
        """How many kinds of fact the rule checks (a narrower rule is more specific)."""
        return sum(value is not None for value in (self.specs, self.context_keys, self.source))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.specs is not None:
            out["specs"] = list(self.specs)
        if self.context_keys is not None:
            out["context_keys"] = list(self.context_keys)
        if self.source is not None:
            out["source"] = [str(network) for network in self.source]
        return out

    def unmet(self, *, spec: str | None, context: Mapping[str, str] | None,
              client: str | None, unknown_holds: bool) -> tuple[str, ...]:
        """The names of the conditions this request does not meet (empty: all hold).

        ``unknown_holds`` says what a fact the server does not know counts as:
        true for deny rules, false for allow rules (fail closed either way).
        """
        failed: list[str] = []
        if self.specs is not None and not (
                unknown_holds if spec is None else spec in self.specs):
            failed.append("specs")
        if self.context_keys is not None:
            present = context or {}
            if not all(key in present for key in self.context_keys):
                failed.append("context_keys")
        if self.source is not None:
            address = client_address(client)
            if not (unknown_holds if address is None else _in_any(address, self.source)):
                failed.append("source")
        return tuple(failed)


@lru_cache(maxsize=4096)  # clients repeat; parsing an address per request is measurable
def client_address(client: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The client's IP address, or ``None`` when it is unknown (no address, a socket path)."""
    if not client:
        return None
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return None
    # A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d; judge them as the
    # IPv4 address they are, so an IPv4 range neither misses nor over-matches them.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _in_any(address: ipaddress.IPv4Address | ipaddress.IPv6Address,
            networks: Iterable[IPNetwork]) -> bool:
    return any(address.version == network.version and address in network
               for network in networks)


def parse_conditions(where: str, raw: object, operations: tuple[str, ...]) -> Conditions:
    """Validate a rule's ``conditions`` object for a rule naming ``operations``.

    ``where`` prefixes every message (``rule 2: conditions.specs: ...``) so the
    author knows which line of which policy to fix.
    """
    if not isinstance(raw, Mapping) or not raw:
        raise InvalidRequest(
            f"{where}: conditions must be an object with at least one of "
            f"{', '.join(CONDITION_FIELDS)}")
    unknown = set(raw) - set(CONDITION_FIELDS)
    if unknown:
        raise InvalidRequest(
            f"{where}: unknown condition(s): {', '.join(sorted(map(str, unknown)))}; "
            f"known: {', '.join(CONDITION_FIELDS)}")
    specs = context_keys = None
    source = None
    if "specs" in raw:
        _only_for(where, "specs", operations, SPEC_OPERATIONS)
        specs = _specs(where, raw["specs"])
    if "context_keys" in raw:
        _only_for(where, "context_keys", operations, CONTEXT_OPERATIONS)
        context_keys = _context_keys(where, raw["context_keys"])
    if "source" in raw:
        source = _source(where, raw["source"])
    return Conditions(specs=specs, context_keys=context_keys, source=source)


def _only_for(where: str, field: str, operations: tuple[str, ...],
              allowed: frozenset[str]) -> None:
    if "*" in operations:
        raise InvalidRequest(
            f"{where}: conditions.{field} applies only to {', '.join(sorted(allowed))}; "
            "name those operations instead of '*'")
    others = [op for op in operations if op not in allowed]
    if others:
        raise InvalidRequest(
            f"{where}: conditions.{field} applies only to {', '.join(sorted(allowed))}; "
            f"move {', '.join(others)} to a rule of its own")


def _string_list(where: str, field: str, value: object) -> list[str]:
    if not isinstance(value, list) or not value:
        raise InvalidRequest(f"{where}: conditions.{field} must be a non-empty list of strings")
    if len(value) > MAX_CONDITION_ENTRIES:
        raise InvalidRequest(
            f"{where}: conditions.{field} has at most {MAX_CONDITION_ENTRIES} entries")
    for item in value:
        if not isinstance(item, str) or not item:
            raise InvalidRequest(
                f"{where}: conditions.{field} must be a non-empty list of strings")
    return list(dict.fromkeys(value))  # de-duplicated, order kept


def _specs(where: str, value: object) -> tuple[str, ...]:
    specs = _string_list(where, "specs", value)
    unknown = [spec for spec in specs if spec not in SPECS]
    if unknown:
        raise InvalidRequest(
            f"{where}: conditions.specs: unknown spec(s) {', '.join(unknown)}; "
            f"known specs: {', '.join(SPECS)}")
    return tuple(specs)


def _context_keys(where: str, value: object) -> tuple[str, ...]:
    keys = _string_list(where, "context_keys", value)
    for key in keys:
        if len(key) > MAX_CONTEXT_KEY_LENGTH:
            raise InvalidRequest(f"{where}: conditions.context_keys: a key is at most "
                                 f"{MAX_CONTEXT_KEY_LENGTH} characters")
    return tuple(keys)


def _source(where: str, value: object) -> tuple[IPNetwork, ...]:
    ranges = _string_list(where, "source", value)
    networks: list[IPNetwork] = []
    for text in ranges:
        try:
            # strict: "10.0.0.1/8" is refused rather than widened to 10.0.0.0/8 silently
            networks.append(ipaddress.ip_network(text, strict=True))
        except ValueError as exc:
            if "host bits set" in str(exc):
                wider = ipaddress.ip_network(text, strict=False)
                raise InvalidRequest(
                    f"{where}: conditions.source: {text!r} has host bits set; "
                    f"did you mean {wider}?") from None
            raise InvalidRequest(
                f"{where}: conditions.source: {text!r} is not an IPv4 or IPv6 address "
                "range like 10.0.0.0/8 or ::1/128") from None
    return tuple(dict.fromkeys(networks))
