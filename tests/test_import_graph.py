"""No import circles in ``agentops``: every module's imports, read from its source, form no cycle.

The rule the walk applies:

- Every ``import`` and ``from ... import`` statement in a module counts, wherever it
  stands: at the top, under ``if TYPE_CHECKING:``, inside a function (an import
  deferred for start-up speed is still a dependency), or in a ``try`` block.
- A statement is an edge to the most specific module it names: ``from .x import y``
  goes to ``x.y`` when that is a module, else to ``x``; ``from . import name`` goes to
  the package's ``__init__`` unless ``name`` is a submodule. Relative imports are
  resolved against the importing module's package.
- Python initialising a submodule's parent packages first is not an edge: every
  submodule would otherwise be in a cycle with a package that re-exports it.
- Only modules under ``src/agentops`` are nodes; other packages are ignored.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import agentops

PACKAGE_ROOT = Path(agentops.__file__).parent


@dataclass(frozen=True)
class Import:
    target: str  # a module of the package
    line: int


def module_files(root: Path) -> dict[str, tuple[Path, bool]]:
    """Every module under ``root`` (a package directory) by dotted name: (file, is a package)."""
    modules: dict[str, tuple[Path, bool]] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        modules[".".join(parts)] = (path, is_package)
    return modules


def import_graph(root: Path) -> dict[str, list[Import]]:
    """The imports of every module under ``root``, by the rule in this file's docstring."""
    modules = module_files(root)
    graph: dict[str, list[Import]] = {}
    for name, (path, is_package) in modules.items():
        imports: dict[str, Import] = {}
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            for target in _named_modules(node, name, is_package, modules):
                if target != name and target not in imports:
                    imports[target] = Import(target, getattr(node, "lineno", 0))
        graph[name] = list(imports.values())
    return graph


def _named_modules(
    node: ast.AST, module: str, is_package: bool, modules: dict[str, tuple[Path, bool]]
) -> Iterator[str]:
    if isinstance(node, ast.Import):
        candidates = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            package = module.split(".") if is_package else module.split(".")[:-1]
            base = package[: len(package) - (node.level - 1)]
            prefix = ".".join([*base, *([node.module] if node.module else [])])
        else:
            prefix = node.module or ""
        candidates = [f"{prefix}.{alias.name}" for alias in node.names]
    else:
        return
    for candidate in candidates:
        while candidate and candidate not in modules:  # a name defined in a module: that module
            candidate = candidate.rpartition(".")[0]
        if candidate:
            yield candidate


def cycles(graph: dict[str, list[Import]]) -> list[list[str]]:
    """One cycle through each group of modules that import each other (Tarjan's components)."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = lowlink[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for edge in graph[module]:
            if edge.target not in index:
                visit(edge.target)
                lowlink[module] = min(lowlink[module], lowlink[edge.target])
            elif edge.target in on_stack:
                lowlink[module] = min(lowlink[module], index[edge.target])
        if lowlink[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                components.append(component)

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return [_a_cycle_within(sorted(component), graph) for component in components]


def _a_cycle_within(component: list[str], graph: dict[str, list[Import]]) -> list[str]:
    """The shortest way from the component's first module back to itself, as modules."""
    members = set(component)
    start = component[0]
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for module in frontier:
            for edge in graph[module]:
                if edge.target == start:
                    path = [module]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if edge.target in members and edge.target not in came_from:
                    came_from[edge.target] = module
                    following.append(edge.target)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # a component always has one


def describe(cycle: list[str], graph: dict[str, list[Import]]) -> str:
    """``a -> b (a.py line 12) -> a (b.py line 3)``."""
    text = cycle[0]
    for source, target in pairwise(cycle):
        line = next(edge.line for edge in graph[source] if edge.target == target)
        text += f" -> {target} ({source} line {line})"
    return text


def test_no_module_of_agentops_is_in_an_import_cycle() -> None:
    graph = import_graph(PACKAGE_ROOT)
    found = [describe(cycle, graph) for cycle in cycles(graph)]
    assert found == [], "import cycles:\n" + "\n".join(found)


def test_the_walk_sees_deferred_and_type_only_imports_in_agentops() -> None:
    graph = {
        name: {edge.target for edge in edges} for name, edges in import_graph(PACKAGE_ROOT).items()
    }
    assert "agentops.tracing.session" in graph["agentops.tracing"]  # inside open_tracing
    assert "agentops.runtime.messages" in graph["agentops.runtime.events"]  # under TYPE_CHECKING
    assert "agentops.runtime.usage" in graph["agentops.runtime.messages"]
    assert "agentops.lazy" in graph["agentops.store"]  # from ..lazy import ...


# What each layer may not import: data flows one way (CONTRIBUTING.md, "Layout").
FORBIDDEN = {
    "agentops.workflow": (
        "runtime",
        "providers",
        "tools",
        "store",
        "ui",
        "web",
        "tracing",
        "batch",
        "cli",
        "api",
        "assembly",
    ),
    "agentops.runtime": (
        "providers",
        "tools",
        "store",
        "ui",
        "web",
        "tracing",
        "batch",
        "cli",
        "api",
        "assembly",
    ),
    "agentops.store": (
        "runtime.engine",
        "runtime.agent_run",
        "ui",
        "web",
        "tracing",
        "batch",
        "cli",
        "api",
        "assembly",
    ),
}


def test_the_workflow_runtime_and_store_layers_import_nothing_above_them() -> None:
    found = []
    for module, imports in sorted(import_graph(PACKAGE_ROOT).items()):
        for layer, above in FORBIDDEN.items():
            if module != layer and not module.startswith(layer + "."):
                continue
            found += [
                f"{module} imports {edge.target} (line {edge.line})"
                for edge in imports
                if any(
                    edge.target == f"agentops.{name}" or edge.target.startswith(f"agentops.{name}.")
                    for name in above
                )
            ]
    assert found == [], "imports against the data path:\n" + "\n".join(found)


def write_package(root: Path, files: dict[str, str]) -> Path:
    package = root / "pkg"
    for name, text in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return package


def test_a_type_only_import_closes_a_cycle(tmp_path: Path) -> None:
    package = write_package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n",
            "b.py": "from .a import A\n",
        },
    )
    graph = import_graph(package)
    assert [describe(cycle, graph) for cycle in cycles(graph)] == [
        "pkg.a -> pkg.b (pkg.a line 3) -> pkg.a (pkg.b line 1)"
    ]


def test_a_function_local_import_in_a_subpackage_closes_a_cycle(tmp_path: Path) -> None:
    package = write_package(
        tmp_path,
        {
            "__init__.py": "",
            "sub/__init__.py": "from .. import top\n",
            "sub/leaf.py": "def f():\n    from ..top import g\n",
            "top.py": "import pkg.sub.leaf\n",
        },
    )
    graph = import_graph(package)
    assert [describe(cycle, graph) for cycle in cycles(graph)] == [
        "pkg.sub.leaf -> pkg.top (pkg.sub.leaf line 2) -> pkg.sub.leaf (pkg.top line 1)"
    ]


def test_a_submodule_importing_a_sibling_is_no_cycle_with_its_package(tmp_path: Path) -> None:
    package = write_package(
        tmp_path,
        {
            "__init__.py": "from .a import A\n",
            "a.py": "from .b import B\nA = 1\n",
            "b.py": "B = 2\n",
        },
    )
    graph = import_graph(package)
    assert cycles(graph) == []
    assert {edge.target for edge in graph["pkg"]} == {"pkg.a"}
