"""Services answer domain values, never the wire JSON (issue 11, "one pipeline").

A public function or method of a module under ``service/`` or ``auth/`` must not be
annotated to return ``dict[str, Any]``: that is an HTTP answer built in the service,
and the API layer (``api/serialize*.py``) is where domain values become JSON. Checked
on the source by AST, not by importing it. Methods whose job IS a wire form (a change
event's ``to_wire``, a settings object's ``to_json``) are allowed by name; anything
else still waiting to be converted is listed in ``ALLOWED`` with its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "keyquorum"
LAYERS = ("service", "auth")

WIRE_METHODS = frozenset({"to_json", "to_wire"})
"""Names whose contract is a serial form (stored JSON, an event between processes)."""

ALLOWED: dict[str, str] = {
    "service/core.py:Core.init": "not converted yet: its answer is wiped by "
                                 "api.secret_answer (shares, root token), which reads the dict",
    "service/custodians.py:CustodianRegistry.challenge": "not converted yet (drill challenge)",
    "service/custodians.py:CustodianRegistry.prove": "not converted yet (drill proof)",
    "service/custodians.py:CustodianRegistry.register_key": "not converted yet (custodian key)",
    "service/seals.py:SealSet.remove": "not converted yet (seal removal answer)",
}
"""``path:Class.method`` still returning a wire dict, each with the reason; remove an entry
once converted (a test insists it still exists)."""


def _is_wire_dict(node: ast.expr | None) -> bool:
    return node is not None and ast.unparse(node).replace(" ", "") in (
        "dict[str,Any]", "dict[str,Any]|None", "'dict[str,Any]'")


def wire_returns(source: str, where: str) -> list[str]:
    """Public functions and methods of ``source`` annotated ``-> dict[str, Any]``."""
    found: list[str] = []

    def visit(node: ast.AST, owner: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, child.name)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                public = not child.name.startswith("_") and child.name not in WIRE_METHODS
                if public and _is_wire_dict(child.returns):
                    found.append(f"{where}:{owner + '.' if owner else ''}{child.name}")

    visit(ast.parse(source), None)
    return found


def _all_found() -> list[str]:
    found: list[str] = []
    for layer in LAYERS:
        for path in sorted((SRC / layer).rglob("*.py")):
            found += wire_returns(path.read_text(), path.relative_to(SRC).as_posix())
    return found


def test_no_service_returns_wire_json() -> None:
    offenders = [f for f in _all_found() if f not in ALLOWED]
    assert not offenders, ("services return domain values; serialize in api/: "
                           + ", ".join(offenders))


def test_every_allowance_is_still_needed() -> None:
    stale = set(ALLOWED) - set(_all_found())
    assert not stale, f"converted: remove from ALLOWED: {sorted(stale)}"


def test_the_check_catches_a_wire_dict() -> None:
    """The check can fail: a sample with each kind of offender, and what stays allowed."""
    sample = '''
from typing import Any

def answer() -> dict[str, Any]: ...
def _private() -> dict[str, Any]: ...
def typed() -> "Status": ...

class Ceremony:
    def status(self) -> dict[str, Any]: ...
    async def submit(self) -> dict[str, Any] | None: ...
    def to_json(self) -> dict[str, Any]: ...
    def _describe(self) -> dict[str, Any]: ...
'''
    assert wire_returns(sample, "service/x.py") == [
        "service/x.py:answer", "service/x.py:Ceremony.status", "service/x.py:Ceremony.submit"]
