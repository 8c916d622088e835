"""No import cycles anywhere in bfxd (style: "No import cycles"), counting every import statement in the source.

Imports under ``if TYPE_CHECKING:`` and inside functions count too: they hide a cycle from the interpreter, not
from a reader. ``from package import name`` is an edge to ``package.name`` when that is a module, else to the
package itself (its ``__init__``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import bfxd

ROOT = Path(bfxd.__file__).parent.parent


def module_names() -> dict[str, Path]:
    names = {}
    for path in sorted((ROOT / "bfxd").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                graph[name].update(alias.name for alias in node.names if alias.name in modules)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, node.module] if node.module else anchor)
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    if target in modules:
                        graph[name].add(target)
                    elif base in modules:
                        graph[name].add(base)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle's modules (strongly connected components of two or more, or a module importing itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm; bfxd is far too small for the recursion to matter
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_bfxd_has_no_import_cycles() -> None:
    """The import graph of every bfxd package is acyclic."""
    modules = module_names()
    assert {"bfxd.protocol.decode", "bfxd.simulator.server", "bfxd.actors.connection"} <= modules.keys()
    assert cycles(import_graph(modules)) == []


def test_the_check_finds_a_cycle() -> None:
    """The detector itself: a two-module cycle and a self-import are found, a chain is not."""
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert cycles({"a": {"a"}}) == [["a"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_type_checking_imports_count(tmp_path: Path) -> None:
    """An import hidden under TYPE_CHECKING is an edge like any other."""
    (tmp_path / "one.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import two\n")
    (tmp_path / "two.py").write_text("def f():\n    from one import x\n")
    graph = import_graph({"one": tmp_path / "one.py", "two": tmp_path / "two.py"})
    assert graph == {"one": {"two"}, "two": {"one"}} and cycles(graph) == [["one", "two"]]
