"""Who is calling: what a token resolves to once authenticated.

An ``Identity`` never holds the token itself, only its public ``accessor``, so it
can be logged, audited and put in exceptions without leaking a credential.
"""

from __future__ import annotations

from dataclasses import dataclass

ROOT_POLICY_NAME = "root"
"""The built-in policy that allows everything; it cannot be stored or deleted."""


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller: the token's accessor and the policies it holds."""

    accessor: str
    name: str | None
    policies: tuple[str, ...]
    expires_at: float | None
    created_at: float
    orphan: bool = False
    """Revoking the token that made it leaves it alone (made by a root holder with
    ``orphan``, or with no parent token at all: init's and break glass's root tokens)."""

    @property
    def is_root(self) -> bool:
        """A root identity bypasses policy evaluation entirely."""
        return ROOT_POLICY_NAME in self.policies
