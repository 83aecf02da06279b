"""The shape of ``src/keyquorum``: no import cycle (lazy imports included), no huge module.

The graph is built from the source by AST, not by importing it, so a cycle hidden in a
function body (an import that runs only on first call) counts as much as a top-level one:
it still ties the two modules together and only moves the failure to run time. Imports
under ``if TYPE_CHECKING:`` never run and are left out. ``from x import y`` is an edge
to ``x.y`` when that is a module, otherwise to ``x``. An edge goes to the module named,
not to its parent packages (Python runs a package's ``__init__`` first, but a child
importing a sibling while its package initialises is the normal case, not a cycle).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "keyquorum"

STYLE_LINES = 500
"""STYLE: split a module before it passes ~500 lines."""
MAX_LINES = 550
"""Where the test stops a module: STYLE's mark plus a little slack."""

KNOWN_LARGE: dict[str, str] = {}
"""Modules allowed past STYLE's mark, each with the reason; remove an entry once it is split."""


def _module_files(src: Path = SRC, package: str = PACKAGE) -> dict[str, Path]:
    modules = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: module level, in functions, in classes."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:  # only the ``else:`` branch runs
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def import_graph(src: Path = SRC, package: str = PACKAGE) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports (anywhere an import can run)."""
    modules = _module_files(src, package)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for module, path in modules.items():
        for node in _imports(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = _absolute(module, path, node)
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            graph[module].update(t for t in targets if t in modules and t != module)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _describe(component: list[str], graph: dict[str, set[str]]) -> str:
    members = set(component)
    edges = [f"    {a} -> {b}" for a in component for b in sorted(graph[a] & members)]
    return f"  cycle of {len(component)} modules:\n" + "\n".join(edges)


def test_the_graph_sees_lazy_imports_and_skips_type_checking_ones(tmp_path: Path) -> None:
    files = {
        "pkg/__init__.py": "",
        "pkg/sub/__init__.py": "",
        "pkg/sub/leaf.py": "import os\n",
        "pkg/a.py": "from pkg.sub import leaf\nfrom . import b\n",
        "pkg/b.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                     "    from pkg.a import A\n"
                     "def later():\n    from .sub.leaf import thing\n"),
        "pkg/c.py": "class C:\n    def m(self):\n        import pkg.d\n",
        "pkg/d.py": "from pkg import c\nfrom pkg.sub import missing_name\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.a"] == {"pkg.sub.leaf", "pkg.b"}  # submodules resolved, relative too
    assert graph["pkg.b"] == {"pkg.sub.leaf"}  # the lazy one counts, TYPE_CHECKING does not
    assert graph["pkg.d"] == {"pkg.c", "pkg.sub"}  # a name, not a module: the package
    assert cycles(graph) == [["pkg.c", "pkg.d"]]  # a method-level import closes the cycle


def test_no_import_cycle_lazy_imports_included() -> None:
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import cycles in src/keyquorum:\n" + "\n".join(
        _describe(component, graph) for component in found)


def test_no_module_past_the_size_limit() -> None:
    modules = _module_files()
    sizes = {name: len(path.read_text().splitlines()) for name, path in modules.items()}
    offenders = sorted((lines, name) for name, lines in sizes.items()
                       if lines > MAX_LINES and name not in KNOWN_LARGE)
    assert not offenders, f"modules over {MAX_LINES} lines (split them):\n" + "\n".join(
        f"  {lines:5d}  {name}" for lines, name in reversed(offenders))


def test_every_known_large_module_still_exists_and_is_still_large() -> None:
    modules = _module_files()
    stale = [name for name in KNOWN_LARGE
             if name not in modules or len(modules[name].read_text().splitlines()) <= STYLE_LINES]
    assert not stale, "drop these from KNOWN_LARGE (split or gone): " + ", ".join(stale)
