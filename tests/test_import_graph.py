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


def import_graph(roots: list[Path], faces_too: bool = False) -> dict[str, set[str]]:
    """Module -> the modules of ``roots`` it imports (package faces left out unless
    ``faces_too``: an import of ``ember.cache``'s names is then an import of the cache room)."""
    modules = modules_under(roots)
    faces = set() if faces_too else {name for name, path in modules.items()
                                     if path.name == "__init__.py"}
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
    assert len(graph) > 100 and "ember.runtime.core" in graph and "ember_gpu.ops.base" in graph
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


# The rooms of core/src/ember, lowest first: a module may import its own room and the rooms below
# it, never one above. OpenVINO's module paths (``ember.properties``, ``ember.opset13``,
# ``ember.preprocess``...) stay where OpenVINO's programs import them and count as the room they
# belong to; the faces at the top (``ember``, ``ember.plugin``) and the programs around the core
# (``ember.cli``, ``ember.compat``, ``ember.testing``) may import any room.
ROOMS = [
    ("leaves", ("ember.errors", "ember.types", "ember._version", "ember.crypto",
                "ember.properties")),
    ("common", ("ember.common",)),
    ("model", ("ember.model", "ember.opset", "ember.opset10", "ember.opset11", "ember.opset12",
               "ember.opset13", "ember.preprocess", "ember.utils", "ember.layout_helpers")),
    ("store", ("ember.store",)),
    ("cache", ("ember.cache",)),
    ("contract", ("ember.contract",)),
    ("runtime", ("ember.runtime",)),
]
ABOVE_THE_ROOMS = ("ember", "ember.plugin", "ember.cli", "ember.compat", "ember.testing")


def room_of(module: str) -> int | None:
    """The level of the room holding ``module`` (0 is the lowest), None above the rooms."""
    best: tuple[int, int] | None = None
    for level, (_, prefixes) in enumerate(ROOMS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (
                    best is None or len(prefix) > best[1]):
                best = (level, len(prefix))
    return None if best is None else best[0]


def core_imports() -> dict[str, set[str]]:
    """Module -> the modules of core it imports, package faces included."""
    return import_graph([ROOT / "core" / "src"], faces_too=True)


def test_every_module_of_core_is_in_a_room_or_above_them():
    modules = modules_under([ROOT / "core" / "src"])
    homeless = [m for m in modules if m.startswith("ember") and room_of(m) is None
                and not any(m == top or m.startswith(top + ".") for top in ABOVE_THE_ROOMS[1:])
                and m != "ember"]
    assert homeless == []


def test_no_room_imports_a_room_above_it():
    names = [name for name, _ in ROOMS]
    upward = sorted(
        f"{source} ({names[room_of(source)]}) -> {target} ({names[room_of(target)]})"
        for source, targets in core_imports().items() if room_of(source) is not None
        for target in targets
        if room_of(target) is None or room_of(target) > room_of(source))  # type: ignore[operator]
    assert upward == []


def test_the_rooms_hold_what_they_say():
    # a newcomer's landmarks: the application API, the plugin contract, one store, the cache
    modules = modules_under([ROOT / "core" / "src"])
    landmarks = [("ember.runtime.core", "runtime"), ("ember.contract.hookspecs", "contract"),
                 ("ember.store.models", "store"), ("ember.cache.local", "cache"),
                 ("ember.model.model", "model"), ("ember.common.checksum", "common")]
    for module, room in landmarks:
        assert module in modules and ROOMS[room_of(module)][0] == room  # type: ignore[index]
    assert [m for m in modules if m.rpartition(".")[2] == "store"] == ["ember.store"]
