"""A module the client imports the first time one of its names is used.

``Client`` holds every API operation, but a ``keyquorum encrypt`` in a shell loop
uses one: importing the call groups it never touches (tokens, policies, audit,
approvals, custodians: some forty frozen dataclasses at ~0.5 ms each) was a tenth
of its start-up (``bench/cli.py``). The loader is a function with a plain
``import`` in it, so the import graph (``tests/test_import_graph.py``) still sees
the edge.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any


class Deferred:
    """Stands for a module; the first attribute read imports it (once, then cached)."""

    __slots__ = ("_load", "_module")

    def __init__(self, load: Callable[[], ModuleType]) -> None:
        self._load = load
        self._module: ModuleType | None = None

    def __getattr__(self, name: str) -> Any:
        module = self._module
        if module is None:  # two threads may both load: import is idempotent and locked
            module = self._module = self._load()
        return getattr(module, name)

    def __repr__(self) -> str:
        return f"Deferred({self._module!r})"
