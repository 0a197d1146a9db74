"""The router's modules depend on each other one way: no import cycle (type-only imports
included), and the servicer, a translator, imports no provider adapter."""

from __future__ import annotations

import ast
from pathlib import Path

import switchboard_router

PACKAGE = Path(switchboard_router.__file__).parent


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Each router module and the router modules it imports, anywhere in it."""
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycles():
    graph = _imports()
    # A package's __init__ importing its own submodules is how a registry lists them, not a cycle.
    for name, deps in graph.items():
        graph[name] = {d for d in deps if not (d.startswith(name + ".") and
                                               (PACKAGE.parent / (name.replace(".", "/"))).is_dir())}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_config_and_the_provider_registry_do_not_import_each_other_both_ways():
    graph = _imports()
    assert "switchboard_router.providers" in graph["switchboard_router.config"]
    assert "switchboard_router.config" not in graph["switchboard_router.providers"]


def test_the_servicer_imports_no_adapter():
    assert not {m for m in _imports()["switchboard_router.servicer"]
                if m.startswith("switchboard_router.providers")}
