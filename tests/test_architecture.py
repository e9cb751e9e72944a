"""The layers' arrows, checked on the source: no import cycles in wfnb/, and nothing outside
wfnb/storage/ reaching into a private storage module (``wfnb.storage._*``).

Every import counts, also those inside functions (lazy) and under TYPE_CHECKING: a lazy import
hides a cycle from the interpreter, not from a reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "wfnb"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports(module: str) -> set[str]:
    """The wfnb modules ``module`` imports (a ``from P import name`` of a submodule counts as
    importing that submodule, of anything else as importing P)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1],
                                 *([base] if base else [])])
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in MODULES else base)
    return {name for name in found if name in MODULES and name != module}


GRAPH = {module: imports(module) for module in MODULES}


def cycle_through(start: str) -> list[str] | None:
    """A shortest import path from ``start`` back to itself, if there is one."""
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for module in frontier:
            for imported in sorted(GRAPH[module]):
                if imported == start:
                    return [*paths[module], start]
                if imported not in paths:
                    paths[imported] = [*paths[module], imported]
                    following.append(imported)
        frontier = following
    return None


def test_the_walk_sees_the_imports_it_should() -> None:
    """Guards the checks below against a walk that finds nothing."""
    assert "wfnb.storage._database" in GRAPH["wfnb.storage._sessions"]
    assert "wfnb.storage._history" in GRAPH["wfnb.storage._storage"]  # `from . import _history`
    assert "wfnb.notebook._inspector" in GRAPH["wfnb"]  # lazy, inside a function
    assert "wfnb.storage" in GRAPH["wfnb._workflow"]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_cycle(module: str) -> None:
    cycle = cycle_through(module)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not m.startswith("wfnb.storage")))
def test_only_the_public_storage_api_is_used_outside_storage(module: str) -> None:
    private = sorted(name for name in GRAPH[module] if name.startswith("wfnb.storage._"))
    assert not private, f"{module} imports {private}: import from wfnb.storage instead"
