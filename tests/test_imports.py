"""The layout of src/aekit: no import cycle among module-level imports, and no module imports
a private name (leading underscore) from another aekit module.

The import graph is built statically with :mod:`ast` (nothing is imported): relative imports
are resolved against the importing module's package, ``from pkg import name`` counts as an
import of ``pkg.name`` when that is a module and of ``pkg`` otherwise. Module-level imports
(including those under ``if TYPE_CHECKING:`` / ``try:`` at top level) and imports inside
functions or methods are kept apart: only the former can form a cycle at import time, the
latter are deliberate lazy imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "aekit"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((SRC / ROOT).rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module):
    """Yield ``(node, level)`` for every import, ``level`` "module", "function" or "typing"
    (under ``if TYPE_CHECKING:``, never run: checked for private names, not for cycles)."""
    def walk(node, in_function, typing=False):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for sub in child.body:
                    yield from walk(ast.Module(body=[sub], type_ignores=[]), in_function, True)
                for sub in child.orelse:
                    yield from walk(ast.Module(body=[sub], type_ignores=[]), in_function, typing)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, "typing" if typing else "function" if in_function else "module"
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                yield from walk(child, True, typing)
            else:
                yield from walk(child, in_function, typing)
    yield from walk(tree, False)


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def build_graph():
    """``(module_edges, function_edges, private_imports)`` for every module under src/aekit.

    Edges are ``{importer: {imported: first line}}``; private imports are
    ``(importer, line, imported module, name)``."""
    mods = _modules()
    module_edges: dict[str, dict[str, int]] = {m: {} for m in mods}
    function_edges: dict[str, dict[str, int]] = {m: {} for m in mods}
    private: list[tuple[str, int, str, str]] = []
    for mod, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        for node, level in _imports(tree):
            edges = {"module": module_edges, "function": function_edges}.get(level)
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = _resolve(node, mod, is_package)
                if not (base == ROOT or base.startswith(ROOT + ".")):
                    continue
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    if sub in mods:
                        targets.append(sub)
                    else:
                        targets.append(base)
                        if a.name.startswith("_") and not a.name.startswith("__"):
                            private.append((mod, node.lineno, base, a.name))
            if edges is None:
                continue
            for t in targets:
                while t and t not in mods:  # ``import aekit.x.attr``: the closest module
                    t = t.rpartition(".")[0]
                if not (t == ROOT or t.startswith(ROOT + ".")):
                    continue
                if t != mod:  # a name from the importer's own package counts: __init__ runs it
                    edges[mod].setdefault(t, node.lineno)
                # importing aekit.x.y also runs the package aekit.x first, unless that package
                # is the importer's own (already being initialised)
                t = t.rpartition(".")[0]
                while t and not (mod == t or mod.startswith(t + ".")):
                    edges[mod].setdefault(t, node.lineno)
                    t = t.rpartition(".")[0]
    return module_edges, function_edges, private


def find_cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as one
    cycle through its members, sorted for a stable message."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    sccs: list[list[str]] = []
    counter = [0]

    def strong(v: str):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, {})):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            strong(v)

    cycles = []
    for comp in sorted(sccs):
        members = set(comp)
        # a shortest cycle through the first member, by breadth-first search inside the SCC
        start = comp[0]
        prev: dict[str, str] = {}
        frontier = [start]
        found = None
        while frontier and found is None:
            nxt = []
            for v in frontier:
                for w in sorted(edges[v]):
                    if w not in members:
                        continue
                    if w == start:
                        found = v
                        break
                    if w not in prev:
                        prev[w] = v
                        nxt.append(w)
                if found is not None:
                    break
            frontier = nxt
        path = [found]
        while path[-1] != start:
            path.append(prev[path[-1]])
        cycles.append([*reversed(path), start])
    return cycles


def _describe(cycle: list[str], edges) -> str:
    return " -> ".join(f"{a} (line {edges[a][b]})" for a, b in zip(cycle, cycle[1:])) + \
        f" -> {cycle[-1]}"


def test_graph_sees_every_module():
    module_edges, function_edges, _ = build_graph()
    assert f"{ROOT}.data" in module_edges and f"{ROOT}.sparse" in module_edges
    # sanity: the package root imports something, and some module imports lazily
    assert module_edges[ROOT]
    assert any(function_edges.values())


def test_no_module_level_import_cycle():
    module_edges, _, _ = build_graph()
    cycles = find_cycles(module_edges)
    assert not cycles, "module-level import cycles:\n" + "\n".join(
        _describe(c, module_edges) for c in cycles)


def test_no_import_cycle_even_counting_lazy_imports():
    """Function-level imports break a cycle at import time but still tie two modules together
    (runs <-> report was one): the layers must not form a cycle either way."""
    module_edges, function_edges, _ = build_graph()
    edges = {m: {**function_edges[m], **module_edges[m]} for m in module_edges}
    cycles = find_cycles(edges)
    assert not cycles, "import cycles (module- and function-level imports):\n" + "\n".join(
        _describe(c, edges) for c in cycles)


def test_no_private_names_imported_across_modules():
    _, _, private = build_graph()
    assert not private, "private names imported from another module:\n" + "\n".join(
        f"{mod} line {line}: from {src} import {name}" for mod, line, src, name in private)


def test_cycle_finder_reports_a_cycle():
    edges = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}, "d": {"a": 4}}
    assert find_cycles(edges) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b": 1}, "b": {}}) == []
