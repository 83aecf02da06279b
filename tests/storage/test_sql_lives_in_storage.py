"""All the SQL in ``storage/``: no module outside it writes a statement against the tables.

ARCHITECTURE puts "ALL the SQL (repos)" in ``storage/``; services, reports, metrics and
backup call repository functions that take a ``Connection``. Checked on the source by
AST, not by importing it. A module outside ``storage/`` writes SQL if it

- imports ``select``, ``insert``, ``update``, ``delete`` or ``text`` from SQLAlchemy
  (``from sqlalchemy import select``, ``sqlalchemy.sql...``, or ``sa.select`` through
  ``import sqlalchemy as sa``);
- imports ``keyquorum.storage.schema`` or anything from it (the table objects and the
  metadata they hang on: ``keys.insert()`` needs no SQLAlchemy import);
- runs driver SQL (``conn.exec_driver_sql(...)``).

``Connection``, ``Engine`` and ``sqlalchemy.exc`` stay allowed: a service opens the
transaction its changes and their audit record share, and maps ``IntegrityError``.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "keyquorum"
STORAGE = "keyquorum.storage"
SCHEMA = "keyquorum.storage.schema"

SQL_VERBS = frozenset({"select", "insert", "update", "delete", "text"})
"""SQLAlchemy's statement constructors (``text`` for hand-written SQL)."""

ALLOWED: dict[str, str] = {}
"""Modules outside ``storage/`` still allowed to write SQL, each with its reason. Remove an
entry once its SQL has moved into a repository under ``storage/`` (a test insists)."""


def _module_files(src: Path = SRC, package: str = PACKAGE) -> dict[str, Path]:
    modules = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _is_sqlalchemy(name: str) -> bool:
    return name == "sqlalchemy" or name.startswith("sqlalchemy.")


def _is_schema(name: str) -> bool:
    return name == SCHEMA or name.startswith(SCHEMA + ".")


def sql_in(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """Where ``source`` (the module ``module``) writes SQL, as ``line: what`` strings."""
    found: list[str] = []
    sqlalchemy_names: set[str] = set()  # local names bound to a sqlalchemy module
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _is_schema(alias.name):
                    found.append(f"{node.lineno}: import {alias.name}")
                elif _is_sqlalchemy(alias.name):
                    sqlalchemy_names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, is_package, node)
            for alias in node.names:
                schema = _is_schema(base) or _is_schema(f"{base}.{alias.name}")
                if schema or (_is_sqlalchemy(base) and alias.name in SQL_VERBS):
                    found.append(f"{node.lineno}: from {base} import {alias.name}")
                elif _is_sqlalchemy(base) and alias.name in ("sql", "future"):
                    sqlalchemy_names.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            if node.attr == "exec_driver_sql":
                found.append(f"{node.lineno}: .exec_driver_sql(...)")
            elif node.attr in SQL_VERBS and _rooted_in(node.value, sqlalchemy_names):
                found.append(f"{node.lineno}: {ast.unparse(node)}")
    return sorted(set(found), key=lambda line: int(line.split(":")[0]))


def _rooted_in(node: ast.expr, names: set[str]) -> bool:
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name) and node.id in names


def _outside_storage() -> dict[str, Path]:
    return {name: path for name, path in _module_files().items()
            if name != STORAGE and not name.startswith(STORAGE + ".")}


def _sql_of(name: str, path: Path) -> list[str]:
    return sql_in(path.read_text(), name, is_package=path.name == "__init__.py")


def test_the_scanner_sees_every_way_of_writing_sql() -> None:
    source = "\n".join([
        "from sqlalchemy import Connection, Engine, select",       # 1: select
        "from sqlalchemy.exc import IntegrityError",                # 2: allowed
        "from sqlalchemy.sql.expression import text as raw",        # 3: text, renamed
        "import sqlalchemy as sa",                                  # 4
        "q = sa.update(t)",                                         # 5: sa.update
        "from keyquorum.storage.schema import keys",                # 6: a table
        "from ..storage import schema",                             # 7: the schema module
        "import keyquorum.storage.schema",                          # 8
        "conn.exec_driver_sql('BEGIN')",                            # 9: driver SQL
        "from keyquorum.storage import keys_repo",                  # 10: allowed
        "def f():\n    from sqlalchemy import delete",              # 12: lazy import
        "conn.select(1); engine.update()",                          # 13: not sqlalchemy's
    ])
    found = sql_in(source, "keyquorum.service.example")
    assert [int(line.split(":")[0]) for line in found] == [1, 3, 5, 6, 7, 8, 9, 12], found


def test_no_sql_outside_storage() -> None:
    offenders = {name: found for name, path in _outside_storage().items()
                 if name not in ALLOWED and (found := _sql_of(name, path))}
    assert not offenders, (
        "SQL outside src/keyquorum/storage/ (move it into a repository there, whose "
        "functions take a Connection):\n" + "\n".join(
            f"  {name}:\n" + "\n".join(f"    {line}" for line in found)
            for name, found in sorted(offenders.items())))


def test_every_allowed_module_still_exists_and_still_writes_sql() -> None:
    modules = _outside_storage()
    stale = [name for name in ALLOWED if name not in modules or not _sql_of(name, modules[name])]
    assert not stale, "drop these from ALLOWED (their SQL moved, or they are gone): " + \
        ", ".join(stale)
