"""The package's import graph, read from the source (nothing is imported): no import circle, not even
through a function-local import, and no private (underscore) name imported from another module."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "chaoskit"

# Older than the systems' packages, and left as they were (outside that change): chaoskit.experiment re-exports
# catalog.load lazily (catalog imports experiment); the ledger removes a docker entry through the docker backend;
# checkers runs the cache / catch-up checkers, which use its types; api and lab call each other lazily; the
# reports draw with report_plot's private helpers; lab reads the fault registry. New ones fail the tests.
KNOWN_CIRCLES = [
    {"chaoskit.catalog", "chaoskit.experiment"},
    {"chaoskit.backends.base", "chaoskit.backends.docker", "chaoskit.backends.ledger"},
    {"chaoskit.cache_aside_checks", "chaoskit.cache_checks", "chaoskit.catch_up", "chaoskit.checkers"},
    {"chaoskit.api", "chaoskit.lab"},
]
KNOWN_PRIVATE = {("chaoskit.report_cache", "chaoskit.report_plot"), ("chaoskit.report", "chaoskit.report_plot"),
                 ("chaoskit.cache_aside_checks", "chaoskit.checkers"), ("chaoskit.lab", "chaoskit.faults")}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """Every import statement outside ``if TYPE_CHECKING:`` (module level or in a function): (module, names)."""
    found: list[tuple[str, list[str]]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.extend((alias.name, []) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.append((child.module, [alias.name for alias in child.names]))
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for module, names in _imports(path):
            if module not in modules:
                continue
            # ``from chaoskit.systems.redis import settings`` imports the submodule
            targets = [f"{module}.{n}" for n in names if f"{module}.{n}" in modules] or [module]
            graph[name].update(t for t in targets if t != name)
    return graph


def _circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[set[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(component)

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


def test_no_import_circle_not_even_through_a_function_local_import() -> None:
    circles = _circles(_graph())
    assert [c for c in circles if c not in KNOWN_CIRCLES] == []


def test_the_graph_sees_function_local_imports() -> None:
    """The check above can fail: the graph has the lazy edges (a system's topology, imported on demand)."""
    graph = _graph()
    assert "chaoskit.systems.redis.topology" in graph["chaoskit.systems.redis.system"]
    assert {"chaoskit.catalog", "chaoskit.experiment"} in _circles(graph)


def test_no_private_name_is_imported_from_another_module() -> None:
    modules = _modules()
    private = set()
    for name, path in modules.items():
        for module, names in _imports(path):
            if module in modules and any(n.startswith("_") and not n.startswith("__") for n in names):
                private.add((name, module))
    assert private - KNOWN_PRIVATE == set()
