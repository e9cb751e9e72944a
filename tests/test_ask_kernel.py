"""``ask`` in real kernels (jupyter_client), answered the way JupyterLab answers: a click sent to
the form's button as a comm message, so the continued run streams from a widget callback into
the form's widgets. Every construct a run can hold asks: a step, a loop, async runs, an inline
``%%workflow`` cell, and parallel branches (threads, ``asyncio.gather``, a ``TaskGroup``), whose
questions must each be asked, one after another, never skipped. And a kernel restart while a run
waits loses nothing."""

from __future__ import annotations

import ast
import html
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.kernel

Message = dict[str, Any]
SETUP = """\
%load_ext wfnb
import asyncio
from concurrent.futures import ThreadPoolExecutor
from wfnb import SqliteWorkflowStorage, Workflow, step
storage = SqliteWorkflowStorage("asks", "asks.db")
executed = []
"""
_QUESTION = re.compile(r"^<b>(.*)</b>$", re.DOTALL)


class Kernel:
    """A kernel, its client, and what a frontend does with them: run cells, click buttons."""

    def __init__(self, cwd: Path) -> None:
        from jupyter_client.manager import start_new_kernel

        self.manager, self.client = start_new_kernel(kernel_name="python3", cwd=str(cwd))

    def run(self, code: str) -> list[Message]:
        """Run a cell; its iopub messages (displays, widgets opened and updated)."""
        messages: list[Message] = []
        reply = self.client.execute_interactive(code, timeout=60, output_hook=messages.append)
        assert reply["content"]["status"] == "ok", reply["content"]
        return messages

    def value(self, expression: str) -> Any:
        """A Python literal the kernel evaluates."""
        printed = [m["content"]["text"] for m in self.run(f"print(repr({expression}))")
                   if m["msg_type"] == "stream"]
        return ast.literal_eval("".join(printed))

    def click(self, messages: list[Message], label: str, timeout: float = 60) -> list[Message]:
        """Click the newest button labelled ``label`` that ``messages`` opened, as a browser
        does (a comm message); the iopub messages of handling it."""
        button = [m["content"]["comm_id"] for m in messages if m["msg_type"] == "comm_open"
                  and m["content"]["data"]["state"].get("_model_name") == "ButtonModel"
                  and m["content"]["data"]["state"].get("description") == label][-1]
        request = self.client.session.msg("comm_msg", {
            "comm_id": button, "data": {"method": "custom", "content": {"event": "click"}}})
        self.client.shell_channel.send(request)
        handled: list[Message] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self.client.get_iopub_msg(timeout=timeout)
            if message["parent_header"].get("msg_id") != request["header"]["msg_id"]:
                continue
            handled.append(message)
            if message["msg_type"] == "status" and \
                    message["content"]["execution_state"] == "idle":
                return handled
        raise TimeoutError(f"the click on {label!r} was not handled in {timeout} s")

    def stop(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    started = Kernel(tmp_path_factory.mktemp("ask-kernel"))
    started.run(SETUP)
    yield started
    started.stop()


def widget_values(messages: list[Message]) -> list[str]:
    """Every HTML value the messages gave a widget (opened with it, or set)."""
    return [m["content"]["data"]["state"]["value"] for m in messages
            if m["msg_type"] in ("comm_open", "comm_msg")
            and isinstance(m["content"]["data"].get("state", {}).get("value"), str)]


def questions(messages: list[Message]) -> list[str]:
    """The questions of the forms the messages opened."""
    return [html.unescape(found.group(1)) for value in widget_values(messages)
            if (found := _QUESTION.match(value))]


def answer_every_question(kernel: Kernel, shown: list[Message],
                          answer: str = "yes") -> tuple[list[str], str]:
    """Click ``answer`` on each form, the first shown by the cell, the next below it, until the
    run asks nothing more; the questions asked, and the HTML the continued runs showed."""
    asked, continued = questions(shown), ""
    for _ in range(10):
        handled = kernel.click(shown, answer)
        continued += "".join(widget_values(handled))
        new = questions(handled)
        if not new:
            return asked, continued
        asked += new
        shown = handled
    raise AssertionError(f"still asking after 10 answers: {asked}")


def display_texts(messages: list[Message]) -> str:
    return "".join(m["content"]["data"].get("text/plain", "") for m in messages
                   if m["msg_type"] in ("display_data", "update_display_data"))


PARTS_ASKED = ["Approve part 1?", "Approve part 2?", "Approve part 3?"]
PARTS_DONE = "parts: 1=yes, 2=yes, 3=yes"
ASYNC_BRANCH = """
        async def branch(part):
            await asyncio.sleep(0.01)
            return f"{part}={self.ask(f'Approve part {part}?', options=['yes', 'no'])}"
"""
CONSTRUCTS = {
    "step": ("""
class Review(Workflow):
    @step
    def draft(self, topic):
        executed.append("draft")
        return f"a draft on {topic}"

    @step
    def review(self, draft):
        executed.append("review")
        return self.ask(f"Publish {draft!r}?", options=["yes", "no"])

    def run(self, topic):
        draft = self.draft(topic)
        yield draft + "\\n\\n"
        yield f"published: {self.review(draft)}"

wf = Review(session_id="step", storage=storage)
""", ["Publish 'a draft on pasta'?"], "published: yes", ["draft", "review", "review"]),
    "loop": ("""
class Loop(Workflow):
    def run(self, topic):
        for n in range(3):
            yield f"item {n}: {self.ask('Keep this item?', options=['yes', 'no'])}\\n"

wf = Loop(session_id="loop", storage=storage)
""", ["Keep this item?"] * 3, "item 2: yes", []),
    "async-generator": ("""
class AsyncOutline(Workflow):
    async def run(self, topic):
        await asyncio.sleep(0.01)
        yield f"outline of {topic}\\n\\n"
        yield f"answer: {self.ask('Approve this outline?', options=['yes', 'no'])}"

wf = AsyncOutline(session_id="agen", storage=storage)
""", ["Approve this outline?"], "answer: yes", []),
    "coroutine": ("""
class AsyncAnswer(Workflow):
    async def run(self, topic):
        await asyncio.sleep(0.01)
        return f"answer on {topic}: {self.ask('Approve?', options=['yes', 'no'])}"

wf = AsyncAnswer(session_id="coroutine", storage=storage)
""", ["Approve?"], "answer on pasta: yes", []),
    "threads": ("""
class Threads(Workflow):
    def run(self, topic):
        def branch(part):
            return f"{part}={self.ask(f'Approve part {part}?', options=['yes', 'no'])}"
        with ThreadPoolExecutor(3) as pool:
            yield "parts: " + ", ".join(pool.map(branch, [1, 2, 3]))

wf = Threads(session_id="threads", storage=storage)
""", PARTS_ASKED, PARTS_DONE, []),
    "gather": ("""
class Gather(Workflow):
    async def run(self, topic):""" + ASYNC_BRANCH + """
        yield "parts: " + ", ".join(await asyncio.gather(*(branch(p) for p in (1, 2, 3))))

wf = Gather(session_id="gather", storage=storage)
""", PARTS_ASKED, PARTS_DONE, []),
    "task-group": ("""
class Group(Workflow):
    async def run(self, topic):""" + ASYNC_BRANCH + """
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(branch(p)) for p in (1, 2, 3)]
        yield "parts: " + ", ".join(task.result() for task in tasks)

wf = Group(session_id="group", storage=storage)
""", PARTS_ASKED, PARTS_DONE, []),
}


@pytest.mark.parametrize("construct", sorted(CONSTRUCTS))
def test_ask_in_every_construct_is_answered_in_the_form(kernel: Kernel, construct: str) -> None:
    definition, asked, final, bodies = CONSTRUCTS[construct]
    kernel.run(definition + "executed.clear()")
    shown = kernel.run('%workflow wf.run("pasta")')
    assert "waiting · " in display_texts(shown)
    seen, continued = answer_every_question(kernel, shown)
    assert sorted(seen) == sorted(asked)  # threads may ask in any order; none is skipped
    assert final in html.unescape(continued)
    assert "done · " in continued and "failed" not in continued
    assert kernel.value("[r.status for r in storage.runs(wf.session_id)]") == ["completed"]
    assert kernel.value("wf.pending_question") is None
    assert kernel.value("executed") == bodies


def test_an_inline_cell_asks_and_its_names_land_in_the_notebook(kernel: Kernel) -> None:
    shown = kernel.run("%%workflow inline_ask --db inline.db\n"
                       "yield 'a draft\\n'\n"
                       "verdict = ask('Ship it?', options=['yes', 'no'])\n"
                       "yield f'verdict: {verdict}'\n")
    assert questions(shown) == ["Ship it?"]
    handled = kernel.click(shown, "no")
    assert "verdict: no" in "".join(widget_values(handled))
    assert kernel.value("verdict") == "no"


def test_a_kernel_restart_while_a_run_waits_loses_nothing(tmp_path: Path) -> None:
    definition = CONSTRUCTS["step"][0]
    kernel = Kernel(tmp_path)
    try:
        kernel.run(SETUP + definition)
        kernel.run('%workflow wf.run("pasta")')
        waiting = kernel.value("wf.run_id")
        kernel.manager.restart_kernel(now=True)
        kernel.client.wait_for_ready(timeout=60)
        kernel.run(SETUP + definition)  # a new object for the session, nothing in memory
        assert kernel.value("wf.pending_question.text") == "Publish 'a draft on pasta'?"
        shown = kernel.run('%workflow wf.run("pasta")')  # the same input continues the run
        assert questions(shown) == ["Publish 'a draft on pasta'?"]
        handled = kernel.click(shown, "yes")
        assert "published: yes" in "".join(widget_values(handled))
        assert kernel.value("executed") == ["review", "review"]  # the draft was served
        assert kernel.value("[(r.run_id, r.status) for r in storage.runs('step')]") == [
            (waiting, "completed")]
    finally:
        kernel.stop()
