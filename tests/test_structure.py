"""The package's shape, read from its own imports: they flow one way (no cycle, counting the imports
made inside functions), and rendering a manifest needs no torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The source folders and the package names they install as (pyproject's package-dir).
SOURCES = {"edgezoo": ROOT / "edgezoo", "edgezoo.export": ROOT / "export", "edgezoo.quantize": ROOT / "quantize", "edgezoo.devices": ROOT / "devices"}


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in SOURCES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def import_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(module -> the package's modules it imports, module -> the outside top-level packages it
    imports), every import statement counted wherever it stands, functions included."""
    modules = _modules()
    inside: dict[str, set[str]] = {m: set() for m in modules}
    outside: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                    stem = ".".join(base + ([node.module] if node.module else []))
                else:
                    stem = node.module
                # `from pkg import name` imports pkg.name when that is a module, else pkg itself.
                targets = [f"{stem}.{a.name}" if f"{stem}.{a.name}" in modules else stem for a in node.names]
            else:
                continue
            for target in targets:
                if target in modules:
                    inside[module].add(target)
                elif target.split(".")[0] != "edgezoo":
                    outside[module].add(target.split(".")[0])
                else:
                    raise AssertionError(f"{module} imports {target}, which is not a module of the package")
    return inside, outside


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module, or a module importing itself."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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
            if len(component) > 1 or v in graph[v]:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_imports_flow_one_way():
    inside, _ = import_graph()
    assert len(inside) > 40 and inside["edgezoo.pipeline"]  # the walk saw the package
    assert _cycles(inside) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"a"}}) == [["a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph[module])
    return seen


def test_leaves_stay_leaves():
    inside, outside = import_graph()
    assert inside["edgezoo.metrics"] == set() and outside["edgezoo.metrics"] <= {"numpy", "__future__", "dataclasses", "typing"}
    # The registry imports no model: the models fill it (edgezoo.zoo imports them all).
    assert not any(m.startswith("edgezoo.models") for m in _reachable(inside, "edgezoo.registry"))
    assert inside["edgezoo.models"] == set()


def test_report_renders_without_torch():
    inside, outside = import_graph()
    pulled = set().union(*(outside[m] for m in _reachable(inside, "edgezoo.report")))
    assert "torch" not in pulled, sorted(pulled)
    # and at run time, in a fresh interpreter
    probe = "import sys, edgezoo.report; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd="/", check=True)
    assert result.stdout.strip() == "False"
