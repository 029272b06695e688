"""The package's house rules: layers import only downward, and nothing imports in a cycle.

The import graph is read from the source (imports inside functions included), so a
late ``import`` cannot hide an upward dependency.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "zoo"

#: Bottom to top. A module may import its own layer and the layers below it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "base",
        (
            "zoo.errors",
            "zoo._lazy",
            "zoo.registry",
            "zoo.fileio",
            "zoo.outputs",
            "zoo.backend",
            "zoo.progress",
        ),
    ),
    ("weights", ("zoo.weights",)),
    ("models", ("zoo.models",)),
    ("preprocessing", ("zoo.preprocessing",)),
    ("data", ("zoo.data",)),
    ("loader", ("zoo.api",)),
    ("tasks", ("zoo.tasks",)),
    ("train", ("zoo.train",)),
    ("commands", ("zoo.export",)),
    ("cli", ("zoo.cli",)),
    (
        "public",
        ("zoo", "zoo.__main__", "zoo._register", "zoo.text", "zoo.charlm", "zoo.transfer", "zoo.finetune"),
    ),
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """Module -> the zoo modules it imports, anywhere in its source."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                # `from zoo import api` imports the module zoo.api; `from zoo.x import f` imports zoo.x
                targets = [f"{source}.{a.name}" for a in node.names if f"{source}.{a.name}" in modules]
                targets = targets or [source]
            for target in targets:
                owner = _owner(target, modules) if target.split(".")[0] == "zoo" else None
                if owner and owner != module:
                    graph[module].add(owner)
    return graph


def layer_of(module: str) -> int:
    """Index of the layer a module belongs to (the longest matching prefix wins; ``zoo`` is exact)."""
    best, best_len = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or (prefix != "zoo" and module.startswith(prefix + "."))
            if matches and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    return best


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_module_has_a_layer():
    unplaced = [m for m in _modules() if layer_of(m) < 0]
    assert not unplaced, f"modules outside every layer: {unplaced}; add them to LAYERS"


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_layers_import_only_downward():
    graph = import_graph()
    upward = [
        f"{m} ({LAYERS[layer_of(m)][0]}) imports {t} ({LAYERS[layer_of(t)][0]})"
        for m, targets in sorted(graph.items())
        for t in sorted(targets)
        if layer_of(t) > layer_of(m)
    ]
    assert not upward, "\n".join(upward)


#: The export package's own floors, bottom to top (its ``__init__`` only re-exports, from the top).
EXPORT_FLOORS = (
    ("_common",),
    ("runtimes",),
    ("rounding",),
    ("quantize",),
    ("simulation",),
    ("pieces", "sequential", "equalize"),
    ("distil",),
    ("_write",),
    ("image", "text", "generative"),
    ("api",),
    ("forward",),
)


def test_the_export_package_imports_only_downward():
    floor = {f"zoo.export.{name}": i for i, names in enumerate(EXPORT_FLOORS) for name in names}
    inside = [m for m in _modules() if m.startswith("zoo.export.")]
    assert sorted(inside) == sorted(floor), "give every zoo.export module a floor in EXPORT_FLOORS"
    graph = import_graph()
    upward = [
        f"{m} imports {t}"
        for m in sorted(floor)
        for t in sorted(graph[m])
        if t in floor and floor[t] >= floor[m] and t != m
    ]
    assert not upward, "\n".join(upward)
    assert graph["zoo.export"] <= set(floor)


def test_the_graph_sees_imports_inside_functions():
    """The checker itself: an upward import hidden in a function body is caught."""
    graph = import_graph()
    assert "zoo.api" in graph["zoo.tasks.predict"]  # predict imports the loader inside a function
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_import_zoo_stays_free_of_tensorflow_and_keras():
    code = (
        "import sys, zoo, zoo.data, zoo.tasks, zoo.train, zoo.weights, zoo.preprocessing, zoo.text\n"
        "roots = ('tensorflow', 'keras', 'jax', 'torch')\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in roots)\n"
        "print(heavy)\n"
        "assert not heavy, heavy\n"
        "assert len(zoo.list_models()) >= 33\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("module", ["zoo.text", "zoo.charlm", "zoo.transfer", "zoo.finetune"])
def test_public_faces_only_reexport(module):
    """The public modules kept for the README's API hold no code of their own."""
    path = PACKAGE / (module.split(".")[1] + ".py")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)]
    assert not own, f"{module} defines {[n.name for n in own]}; move them into their layer"


def test_no_function_in_the_package_is_over_80_lines():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > 80:
                    where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
                    long.append(f"{where} {node.name} ({length} lines)")
    assert not long, "split these into named helpers:\n" + "\n".join(long)
