"""The layout shows the architecture: core imports no plugin, and its modules form no import cycle.

Read from the source with ``ast``, so the test needs no import side effects. Imports inside
``if TYPE_CHECKING:`` are for annotations only and do not count; imports inside functions (lazy
ones) count for the plugin rule but not for cycles, since they run only when called.
"""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).parents[1] / "core"


def _module(path: Path) -> str:
    parts = path.relative_to(CORE).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(("xadt", *parts))


def _imports(path: Path, *, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module(path) if path.name == "__init__.py" else _module(path).rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            inner = top and not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                if top or not top_level_only:
                    found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and (top or not top_level_only):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                found.update(f"{base}.{alias.name}" for alias in child.names)
                if base != "xadt":  # `from xadt import hookspecs` names a submodule, not xadt's API
                    found.add(base)
            visit(child, inner)

    visit(tree, True)
    return found


def _core_modules() -> dict[str, Path]:
    return {_module(path): path for path in CORE.rglob("*.py")}


def test_no_module_in_core_imports_a_plugin() -> None:
    offenders = {
        name: sorted(
            i for i in _imports(path, top_level_only=False) if i.startswith("xadt.plugins")
        )
        for name, path in _core_modules().items()
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_core_modules_form_no_import_cycle() -> None:
    modules = _core_modules()
    graph = {
        name: sorted(i for i in _imports(path, top_level_only=True) if i in modules and i != name)
        for name, path in modules.items()
    }
    cycles = []
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                walk(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            walk(name)
    assert cycles == []


def test_the_import_reader_sees_relative_and_nested_imports() -> None:
    package = CORE / "workflows" / "score.py"
    assert "xadt.model" in _imports(package, top_level_only=True)
    assert "xadt.context" in _imports(CORE / "model.py", top_level_only=True)
    assert "xadt.host" not in _imports(CORE / "context.py", top_level_only=True)  # type-only
    assert "xadt.host" in _imports(CORE / "context.py", top_level_only=False)  # lazy
