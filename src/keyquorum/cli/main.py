"""The ``keyquorum`` entry point: argument hoisting, the --version shortcut, the command tree.

Kept free of Typer and of the command tree (``keyquorum.cli.tree``) so that
``keyquorum --version`` costs little more than starting Python, and a plain
``encrypt`` or ``decrypt`` is answered by ``keyquorum.cli.shortcut`` without
Typer; every other call imports the tree, and the tree imports only the module of
the command it runs (``bench/cli.py`` measures it). ``app``, ``COMMANDS`` and
``load_command`` are re-exported from ``keyquorum.cli.tree`` on first use.
"""

from __future__ import annotations

import sys
from typing import Any

from .. import __version__

_GLOBAL_FLAGS = ("--json", "--tls-skip-verify")


def hoist_global_flags(argv: list[str]) -> list[str]:
    """Let global flags follow the command too (``keyquorum key show K --json``).

    Click only accepts a group's options before the subcommand; people type them
    at the end. Flags (no value) are moved to the front; nothing after ``--`` is
    touched, so a file literally named ``--json`` can still be passed after it.
    """
    end = argv.index("--") if "--" in argv else len(argv)
    flags = [arg for arg in argv[:end] if arg in _GLOBAL_FLAGS]
    rest = [arg for arg in argv[:end] if arg not in _GLOBAL_FLAGS]
    return flags + rest + argv[end:]


def run() -> None:
    """Entry point for the ``keyquorum`` script and ``python -m keyquorum``."""
    argv = hoist_global_flags(sys.argv[1:])
    if argv == ["--version"]:  # answered before Typer is even imported
        print(f"keyquorum {__version__}")
        return
    # httpx imports its own command line (click, rich, pygments) when it can, a third of
    # its import time; this process never runs it. A None entry makes that import fail
    # the way httpx expects when its CLI extra is missing (it keeps a stub `main`).
    if "httpx" not in sys.modules:
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    if argv:  # a plain encrypt or decrypt needs no Typer
        from .shortcut import run as shortcut

        status = shortcut(argv)
        if status is not None:
            sys.exit(status)
    from .tree import app

    app(args=argv, prog_name="keyquorum")


def __getattr__(name: str) -> Any:
    if name in ("app", "COMMANDS", "load_command", "KeyquorumGroup"):
        from . import tree

        return getattr(tree, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
