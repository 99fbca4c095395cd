"""The modules of the lrcore package import each other without circles.

Every import counts, including those inside functions: a deferred import still
makes two modules depend on each other, it only hides the circle until run time.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Dict, List, Set

import lrcore

PACKAGE_DIR = Path(lrcore.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = ("lrcore",) + path.relative_to(PACKAGE_DIR).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> Dict[str, Path]:
    return {_module_name(path): path for path in PACKAGE_DIR.rglob("*.py")}


def _compiled_modules() -> Set[str]:
    """Extension modules (lrcore._core, found where the import system put them, which may be outside
    the source tree): they import nothing of lrcore's, but they are import targets."""
    return {name for name in sys.modules if name.startswith("lrcore.") and name not in _modules()}


def import_graph() -> Dict[str, Set[str]]:
    """{module: the lrcore modules it imports anywhere in its source}."""
    sources = _modules()
    modules = set(sources) | _compiled_modules()
    graph: Dict[str, Set[str]] = {name: set() for name in modules}
    for name, path in sources.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: List[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                # "from . import x" names submodules (or attributes of the package itself);
                # "from .x import y" imports x, and y too when y is a submodule of x.
                names = [f"{base}.{alias.name}" for alias in node.names]
                targets = names if node.module is None else [base] + [n for n in names if n in modules]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def find_circle(graph: Dict[str, Set[str]]) -> List[str]:
    """One circle of imports as [a, b, ..., a], or [] when there is none."""
    state: Dict[str, int] = {}  # 1: on the current path, 2: done
    path: List[str] = []

    def visit(node: str) -> List[str]:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        state[node] = 2
        path.pop()
        return []

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return []


def test_the_package_has_no_import_circle():
    circle = find_circle(import_graph())
    assert circle == [], "import circle: " + " -> ".join(circle)


def test_the_circle_finder_finds_circles():
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_deferred_imports_and_the_directions_that_matter():
    graph = import_graph()
    assert "lrcore.schedules._closed_form" in graph["lrcore.schedules._coerce"]
    assert "lrcore.plotting" in graph["lrcore.lr_finder"]
    assert "lrcore.plotting" in graph["lrcore._plot_command"]  # imported inside run()
    assert not any(target.startswith("lrcore.schedules") for target in graph["lrcore.plotting"])
    assert not any(target == "lrcore.plotting" for name, targets in graph.items()
                   if name.startswith("lrcore.schedules") for target in targets)
    # The closed forms leave every check to the compiled constructor.
    assert "lrcore._arguments" not in graph["lrcore.schedules._closed_form"]
