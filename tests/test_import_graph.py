"""No import circles anywhere in the repository's distributions: every import counts (at module
level, inside a function, or for type checking only), since each says which module knows which.

A package's ``__init__.py`` is left out as a target: Ember's hands names on lazily (PEP 562), and
an import of a package's name is an import of the module that defines it.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE_ROOTS = [ROOT / "core" / "src", *sorted(ROOT.glob("plugins/*/src")), ROOT / "tools" / "src"]


def modules_under(roots: list[Path]) -> dict[str, Path]:
    found = {}
    for root in roots:
        for path in root.rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            if any(part.endswith(".egg-info") for part in parts):
                continue
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph(roots: list[Path]) -> dict[str, set[str]]:
    """Module -> the modules of ``roots`` it imports (package faces left out)."""
    modules = modules_under(roots)
    faces = {name for name, path in modules.items() if path.name == "__init__.py"}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in node.names:
                    whole = f"{base}.{alias.name}"
                    targets.add(whole if whole in modules else base)
        graph[name] = {t for t in targets if t in modules and t not in faces and t != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_of_the_repository_imports_itself_through_others():
    graph = import_graph(SOURCE_ROOTS)
    assert len(graph) > 100 and "ember.core" in graph and "ember_gpu.ops.base" in graph
    assert circles(graph) == []


def test_a_circle_is_found(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.b import x\n")
    (package / "b.py").write_text("def f():\n    from . import c\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\n"
                                  "if TYPE_CHECKING:\n    from pkg import a\n")
    (package / "d.py").write_text("import pkg.a\n")
    assert circles(import_graph([tmp_path])) == [["pkg.a", "pkg.b", "pkg.c"]]
