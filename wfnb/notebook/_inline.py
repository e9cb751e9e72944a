"""A ``%%workflow`` cell body turned into a workflow run.

The body becomes the body of a generator function (async when it awaits) taking
``session_state``, ``session_id``, ``run_id`` and ``ask`` (the run's ``Workflow.ask``: stop
until a person answers); ``yield`` streams, a bare ``return`` ends the
run. Every name the body binds at its top level is declared ``global`` in the user namespace,
so assignments land there afterwards, as in a normal cell.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from wfnb._workflow import Workflow

PARAMETERS = ("session_state", "session_id", "run_id", "ask")
_FUNCTION = "__wfnb_cell_body__"


class InlineWorkflow(Workflow):
    """A workflow whose run is a notebook cell's body."""

    cell_body: Any = None

    def run(self) -> Iterator[Any]:
        yield from self.cell_body(self.session_state, self.session_id, self.run_id, self.ask)


class AsyncInlineWorkflow(Workflow):
    """A workflow whose run is a notebook cell's body that awaits."""

    cell_body: Any = None

    async def run(self) -> AsyncIterator[Any]:
        async for item in self.cell_body(self.session_state, self.session_id, self.run_id,
                                         self.ask):
            yield item


def compile_body(
    source: str, namespace: dict[str, Any], filename: str = "<workflow cell>"
) -> tuple[Callable[..., Any], bool]:
    """The cell body as a (generator function, is_async) pair whose globals are ``namespace``."""
    module = ast.parse(source, filename)
    is_async = any(isinstance(node, (ast.Await, ast.AsyncFor, ast.AsyncWith))
                   for node in _top_scope(module))
    bound = sorted(_bound_names(module) - set(PARAMETERS))
    body: list[ast.stmt] = [ast.Global(names=bound)] if bound else []
    body += module.body or [ast.Pass()]
    body.append(ast.If(test=ast.Constant(False), body=[ast.Expr(ast.Yield(None))], orelse=[]))
    arguments = ast.arguments(
        posonlyargs=[], args=[ast.arg(name) for name in PARAMETERS], kwonlyargs=[],
        kw_defaults=[], defaults=[],
    )
    kind = ast.AsyncFunctionDef if is_async else ast.FunctionDef
    function = kind(name=_FUNCTION, args=arguments, body=body, decorator_list=[], returns=None)
    if sys.version_info >= (3, 12):
        function.type_params = []
    tree = ast.fix_missing_locations(ast.Module(body=[function], type_ignores=[]))
    defined: dict[str, Any] = {}
    exec(compile(tree, filename, "exec"), namespace, defined)
    return defined[_FUNCTION], is_async


def _top_scope(tree: ast.AST) -> Iterator[ast.AST]:
    """Nodes of the body's own scope, not those of functions, classes or lambdas inside it."""
    for child in ast.iter_child_nodes(tree):
        yield child
        if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
                                  ast.Lambda)):
            yield from _top_scope(child)


def _bound_names(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in _top_scope(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names if a.name != "*")
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.Global):
            names.update(node.names)
    return names
