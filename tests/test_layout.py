"""The library's layout: stages import downstream-to-upstream only, never in a cycle, and the
plain library carries no orchestration, database or web-server imports."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "magnet_lib"
#: what only magnet_assets (Dagster), graph_db (Kuzu) and magnet_lib/testing (the test server) may import
FORBIDDEN = ("dagster", "kuzu", "uvicorn", "starlette")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, inside a function?) for every import of a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                found.extend((alias.name, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                found.append((child.module, in_function))
                found.extend((f"{child.module}.{alias.name}", in_function) for alias in child.names)
            visit(child, nested)

    visit(tree, False)
    return found


def library_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        graph[name] = {target for target, _ in imports(path) if target in modules and target != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := dfs(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := dfs(node)):
            return cycle
    return None


def test_no_import_cycle_inside_magnet_lib():
    assert find_cycle(library_graph()) is None


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]


def test_no_library_module_is_imported_inside_a_function_to_dodge_a_cycle():
    lazy = [
        f"{module_name(p)} -> {target}"
        for p in ROOT.rglob("*.py")
        for target, in_function in imports(p)
        if in_function and target.startswith("magnet_lib")
    ]
    assert lazy == []


def test_no_orchestration_database_or_web_server_import_outside_testing():
    offending = [
        f"{p.relative_to(ROOT.parent)}: {target}"
        for p in ROOT.rglob("*.py")
        if "testing" not in p.relative_to(ROOT).parts
        for target, _ in imports(p)
        if target.split(".")[0] in FORBIDDEN
    ]
    assert offending == []


def test_stages_are_subpackages_in_the_papers_order():
    stages = ["pool", "graph", "translation", "distillation", "training", "evaluation", "llm", "testing"]
    assert all((ROOT / s / "__init__.py").is_file() for s in stages)
