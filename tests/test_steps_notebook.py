"""Steps in notebooks: @step in an inline %%workflow cell, --refresh, and the live status line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from tests._shell import capturing_shell, fresh_shell, outputs, run


@pytest.fixture(scope="module")
def shell() -> InteractiveShell:
    return capturing_shell()


@pytest.fixture(autouse=True)
def fresh(
    shell: InteractiveShell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    yield from fresh_shell(shell, tmp_path, monkeypatch)


CELL = '''%%workflow research
@step
def search(query):
    calls.append(query)
    return {"hits": (query.upper(), len(calls))}
found = search("pasta")
yield f"found {found['hits'][0]}"
'''


def statuses(shell: InteractiveShell) -> list[str]:
    return [message["data"]["text/html"] for message in outputs(shell)
            if "wfnb-status" in message["data"].get("text/html", "")]


def test_a_step_in_an_inline_cell_is_served_on_the_next_run(shell: InteractiveShell) -> None:
    run(shell, "from wfnb import step\ncalls = []")
    run(shell, CELL)
    run(shell, CELL)
    assert run(shell, "calls") == ["pasta"]
    assert run(shell, "found") == {"hits": ("PASTA", 1)}
    assert run(shell, "search('x')") == {"hits": ("X", 2)}  # outside a run: a plain call
    run(shell, CELL.replace("%%workflow research", "%%workflow research --refresh"))
    assert run(shell, "calls") == ["pasta", "x", "pasta"]
    assert run(shell, "found") == {"hits": ("PASTA", 3)}


def test_editing_an_inline_step_executes_it_again(shell: InteractiveShell) -> None:
    run(shell, "from wfnb import step\ncalls = []")
    run(shell, CELL)
    run(shell, CELL.replace("query.upper()", "query.title()"))
    assert run(shell, "calls") == ["pasta", "pasta"]
    assert run(shell, "found") == {"hits": ("Pasta", 2)}


def test_the_status_line_names_the_step_and_says_it_was_served(
    shell: InteractiveShell,
) -> None:
    run(shell, "from wfnb import step\ncalls = []")
    run(shell, CELL)
    first = statuses(shell)
    assert any("· step search · steps: 1 run" in line for line in first[:-1])  # live, running
    assert "steps: 1 run, 0 served" in first[-1] and "served from the record" not in first[-1]
    shell.display_pub.outputs.clear()  # type: ignore[attr-defined]
    run(shell, CELL)
    second = statuses(shell)
    assert any("step search (served from the record)" in line for line in second[:-1])
    assert "steps: 0 run, 1 served" in second[-1]


WORKFLOW = '''
from wfnb import Workflow, SqliteWorkflowStorage, step

class Fetch(Workflow):
    @step
    def fetch(self, n):
        calls.append(n)
        return n * 2

    def run(self, n):
        yield str(self.fetch(n))

wf = Fetch(session_id="line", storage=SqliteWorkflowStorage("line", "tmp/line.db"))
calls = []
'''


def test_line_magic_refresh_executes_steps_again(shell: InteractiveShell) -> None:
    run(shell, WORKFLOW)
    for line in ("%workflow wf.run(2)", "%workflow wf.run(2)", "%workflow --refresh wf.run(2)",
                 "%workflow wf.run(2)"):
        result: Any = run(shell, line)
        assert result.content == "4"
    assert run(shell, "calls") == [2, 2]


def test_a_step_defined_in_a_plain_cell_is_keyed_by_its_cell_source(
    shell: InteractiveShell,
) -> None:
    run(shell, WORKFLOW)
    run(shell, "%workflow wf.run(3)")
    run(shell, WORKFLOW.replace("calls = []\n", ""))  # the same source again, in a new cell
    run(shell, "%workflow wf.run(3)")
    assert run(shell, "calls") == [3]
    run(shell, WORKFLOW.replace("calls = []\n", "").replace("n * 2", "n * 20"))  # edited
    result: Any = run(shell, "%workflow wf.run(3)")
    assert result.content == "60" and run(shell, "calls") == [3, 3]


def test_inline_steps_are_recorded_under_their_own_name(shell: InteractiveShell) -> None:
    from wfnb import SqliteWorkflowStorage

    run(shell, "from wfnb import step\ncalls = []")
    run(shell, CELL)
    run(shell, CELL)
    storage = SqliteWorkflowStorage("notebook_workflows", "tmp/workflows.db")
    assert [(r.name, r.cached, r.workflow_name) for r in storage.steps("research")] == [
        ("search", False, "research"), ("search", True, "research")
    ]
    storage.close()


ASYNC_CELL = '''%%workflow fetcher
import asyncio

@step
async def fetch(n):
    await asyncio.sleep(0)
    calls.append(n)
    return list(range(n))

@step
async def stream(items):
    for item in items:
        await asyncio.sleep(0)
        yield f"<{item}>"

items = await fetch(3)
async for chunk in stream(items):
    yield chunk
'''


def test_async_steps_in_an_inline_cell_are_served_on_the_next_run(
    shell: InteractiveShell,
) -> None:
    run(shell, "from wfnb import step\ncalls = []")
    first: Any = run(shell, "%%workflow fetcher --out first\n" + ASYNC_CELL.split("\n", 1)[1])
    run(shell, ASYNC_CELL.replace("%%workflow fetcher", "%%workflow fetcher --out second"))
    assert run(shell, "first.content") == run(shell, "second.content") == "<0><1><2>"
    assert first is None and run(shell, "calls") == [3]
    assert "steps: 0 run, 2 served" in statuses(shell)[-1]
