"""The ask form (wfnb/notebook/_ask.py) at the widget-model level, no browser: buttons and the
text box answer and continue the run below the form, a second question gets a form of its own,
errors show in the form, a second click does nothing; and how a paused stream is shown by
``%workflow``, ``wfnb.show`` and a terminal. Real kernels: test_ask_kernel.py; a browser:
tests/e2e/test_ask.py."""

from __future__ import annotations

import dataclasses
import functools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

import wfnb
from tests._shell import capturing_shell, fresh_shell, outputs, run
from wfnb import RunEvent, RunResponse, SqliteWorkflowStorage, StorageError, Workflow, step
from wfnb.notebook import _frontend
from wfnb.notebook._ask import AskForm, Unrepeated
from wfnb.notebook._live import LiveView, RunInfo
from wfnb.notebook._runner import consume

XSS = "<img src=x onerror=alert(1)>"
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"


class Outline(Workflow):
    """An outline (a step), a question, the rest; ``executed`` counts the bodies that ran."""

    executed: list[str]

    @step
    def outline(self, topic: str) -> str:
        self.executed.append("outline")
        return f"1. why {topic}\n2. how\n\n"

    def run(self, topic: str, question: str = "Approve this outline?",
            options: list[Any] | None = None, default: Any = None) -> Iterator[str]:
        yield self.outline(topic)
        answer = self.ask(question, options=options, default=default)
        self.executed.append(f"after {answer!r}")
        if answer == "fail":
            raise ValueError("the editor refused the outline")
        if answer == "again":
            answer = self.ask("Really?", options=["yes", "no"])
        yield f"answer: {answer}"


@pytest.fixture(autouse=True)
def rich() -> Iterator[None]:
    _frontend.use("jupyterlab")
    yield
    _frontend.use(None)


@pytest.fixture
def outline(tmp_path: Path) -> Iterator[Outline]:
    storage = SqliteWorkflowStorage("ask", tmp_path / "ask.db")
    workflow = Outline(session_id="s1", storage=storage)
    workflow.executed = []
    yield workflow
    storage.close()


def paused(workflow: Outline, **kwargs: Any) -> RunResponse:
    last: Any = list(workflow.run("pasta", **kwargs))[-1]  # run() is wrapped: RunResponses
    assert isinstance(last, RunResponse) and last.event == RunEvent.run_paused.value
    return last


def form_of(response: RunResponse, shown: str = "") -> AskForm:
    return AskForm(response, functools.partial(consume, poll=0.01), shown=shown, refresh_rate=0)


def asked(workflow: Outline, **kwargs: Any) -> AskForm:
    """The form under a run of ``workflow`` shown as ``%workflow`` shows it."""
    info = RunInfo()
    response = consume(workflow.run("pasta", **kwargs),
                       LiveView(info, lambda data, display_id, update: None), info)
    assert info.text_before == "1. why pasta\n2. how\n\n"
    return form_of(response, info.text_before)


def shown(form: AskForm) -> str:
    """The HTML the continued run shows below the form (nested forms left out)."""
    return "".join(child.value for child in form.output.children if hasattr(child, "value"))


def labels(form: AskForm) -> list[str]:
    return [button.description for button in form.buttons]


def test_a_button_answers_and_the_rest_streams_below(outline: Outline) -> None:
    form = asked(outline, options=["yes", "no"])
    assert labels(form) == ["yes", "no"] and form.text_box is None
    form.buttons[0].click()
    assert all(button.disabled for button in form.buttons)
    assert "answered &#x27;yes&#x27;" in form.note.value
    assert "answer: yes" in shown(form)
    assert "why pasta" not in shown(form)  # replayed by the resumed run: shown above already
    assert "done · Outline · session s1" in shown(form) and "0 run, 1 served" in shown(form)
    assert outline.executed == ["outline", "after 'yes'"]  # the step was served
    assert form.result is not None and form.result.content == "1. why pasta\n2. how\n\nanswer: yes"
    [run_record] = outline.storage.runs("s1")  # type: ignore[union-attr]
    assert (run_record.run_id, run_record.status) == (form.paused.run_id, "completed")


def test_what_a_resumed_run_replays_is_left_out_until_it_differs() -> None:
    class Added(list[str]):
        def add(self, text: str) -> None:
            self.append(text)

    added = Added()
    view = Unrepeated(added, "one\ntwo\n")  # type: ignore[arg-type]
    for chunk in ("one\n", "tw", "X\n", "three"):
        view.add(chunk)
    assert added == ["X\n", "three"]
    added.clear()
    view = Unrepeated(added, "one\n")  # type: ignore[arg-type]
    for chunk in ("one\ntwo", "\n"):
        view.add(chunk)
    assert added == ["two", "\n"]


def test_free_text_is_prefilled_with_the_default_and_submitted(outline: Outline) -> None:
    form = form_of(paused(outline, question="Title?", default="Pasta"))
    assert form.text_box is not None and form.text_box.value == "Pasta"
    assert labels(form) == ["Submit"]
    form.text_box.value = f"Risotto {XSS}"
    form.buttons[0].click()
    assert f"answer: Risotto {ESCAPED}" in shown(form) and XSS not in shown(form)
    assert outline.executed[-1] == f"after 'Risotto {XSS}'"
    assert form.text_box.disabled


def test_options_that_are_not_text_are_answered_as_themselves(outline: Outline) -> None:
    form = form_of(paused(outline, question="How many parts?", options=[2, 3], default=3))
    assert labels(form) == ["2", "3"]
    assert [button.button_style for button in form.buttons] == ["", "primary"]  # the default
    form.buttons[1].click()
    assert outline.executed[-1] == "after 3"


def test_a_second_question_gets_a_form_below_the_first(outline: Outline) -> None:
    form = asked(outline, options=["again", "yes"])
    form.buttons[0].click()
    assert form.result is not None and form.result.event == RunEvent.run_paused.value
    second = form.next
    assert second is not None and second.widget in form.output.children
    assert "waiting · Outline · session s1" in shown(form) and "asks &#x27;Really?" in shown(form)
    assert labels(second) == ["yes", "no"]
    second.buttons[1].click()
    assert "answer: no" in shown(second) and "why pasta" not in shown(second)
    assert outline.executed == ["outline", "after 'again'", "after 'again'"]
    assert [r.status for r in outline.storage.runs("s1")] == ["completed"]  # type: ignore[union-attr]


def test_a_second_click_does_nothing(outline: Outline) -> None:
    form = form_of(paused(outline, options=["yes", "no"]))
    form.buttons[0].click()
    note, children = form.note.value, form.output.children
    form.buttons[0].click()
    form.buttons[1].click()
    assert outline.executed == ["outline", "after 'yes'"]
    assert (form.note.value, form.output.children) == (note, children)


def test_a_question_answered_elsewhere_meanwhile_says_so(outline: Outline) -> None:
    form = form_of(paused(outline, options=["yes", "no"]))
    list(outline.resume("no"))  # in a cell below, before the click
    form.buttons[0].click()
    assert "not resumed" in form.note.value and "waiting for an answer" in form.note.value
    assert form.output.children == () and outline.executed[-1] == "after 'no'"


def test_an_answer_recorded_meanwhile_refuses_the_click_and_keeps_the_form(
    outline: Outline,
) -> None:
    form = form_of(paused(outline, options=["yes", "no"]))
    outline.storage.answer("s1", "no")  # type: ignore[union-attr]  # what `wfnb answer` does
    form.buttons[0].click()
    assert "not answered: AnswerRefusedError" in form.note.value
    assert not any(button.disabled for button in form.buttons)
    assert form.output.children == () and outline.executed == ["outline"]


def test_an_answer_that_cannot_be_recorded_says_why_and_keeps_the_form(
    outline: Outline,
) -> None:
    def unreachable(answer: Any) -> Any:
        raise StorageError("database is locked", table="ask", session_id="s1")

    form = form_of(dataclasses.replace(paused(outline, options=["yes", "no"]),
                                       resume=unreachable))
    form.buttons[0].click()
    assert "not answered: StorageError: database is locked" in form.note.value
    assert not any(button.disabled for button in form.buttons)


def test_an_interrupted_continuation_says_so(outline: Outline) -> None:
    def interrupted(source: Any, view: Any, info: Any) -> RunResponse:
        raise KeyboardInterrupt

    form = AskForm(paused(outline, options=["yes", "no"]), interrupted)
    form.buttons[0].click()
    assert "answered &#x27;yes&#x27;; the run then was interrupted" in form.note.value


def test_a_run_failing_after_the_answer_shows_the_error_in_the_form(outline: Outline) -> None:
    form = form_of(paused(outline, options=["fail", "yes"]))
    form.buttons[0].click()
    assert "ValueError: the editor refused the outline" in form.note.value
    assert "failed · Outline · session s1" in shown(form)
    assert [r.status for r in outline.storage.runs("s1")] == ["failed"]  # type: ignore[union-attr]


def test_untrusted_question_and_options_are_escaped(outline: Outline) -> None:
    form = form_of(paused(outline, question=f"Approve {XSS}?", options=[XSS, "no"]))
    html = "".join(str(child.value) for child in form.widget.children if hasattr(child, "value"))
    assert ESCAPED in html and XSS not in html
    bundle = form._repr_mimebundle_()
    assert ESCAPED in bundle["text/html"] and XSS not in bundle["text/html"]
    assert labels(form)[0] == XSS  # a button's label is a text node in the browser


def test_a_response_that_cannot_resume_is_refused() -> None:
    with pytest.raises(ValueError, match="RunPaused"):
        form_of(RunResponse(content="done"))


# -- how a paused stream is shown -------------------------------------------------------------


@pytest.fixture(scope="module")
def shell() -> InteractiveShell:
    return capturing_shell()


@pytest.fixture
def cell(shell: InteractiveShell, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    for _ in fresh_shell(shell, tmp_path, monkeypatch):  # set up, then torn down after
        yield shell


WORKFLOW = """
from wfnb import Workflow, SqliteWorkflowStorage

class Approve(Workflow):
    def run(self, topic):
        yield f"outline of {topic}\\n"
        yield f"answer: {self.ask('Approve this outline?', options=['yes', 'no'])}"

wf = Approve(session_id="s1", storage=SqliteWorkflowStorage("ask", "tmp/ask.db"))
"""


def widget_bundles(shell: InteractiveShell) -> list[dict[str, Any]]:
    return [message["data"] for message in outputs(shell)
            if "application/vnd.jupyter.widget-view+json" in message["data"]]


def test_the_line_magic_returns_the_paused_response_and_shows_the_form(
    cell: InteractiveShell,
) -> None:
    run(cell, WORKFLOW)
    response = run(cell, "%workflow wf.run('pasta')")
    assert response.event == "RunPaused" and response.question.text == "Approve this outline?"
    statuses = [m["data"]["text/plain"] for m in outputs(cell)
                if "wfnb-status" in m["data"].get("text/html", "") and not m["update"]]
    assert statuses[-1].startswith("waiting · Approve · session s1 · run ")
    assert statuses[-1].endswith("asks 'Approve this outline?'")
    [bundle] = widget_bundles(cell)
    assert "<b>Approve this outline?</b>" in bundle["text/html"]
    assert "workflow.resume(&#x27;yes&#x27;)" in bundle["text/html"]
    assert "wfnb answer s1 yes" in bundle["text/plain"]
    assert run(cell, "wf.pending_question.text") == "Approve this outline?"
    assert [r.content for r in response.resume("yes")] == ["outline of pasta\n", "answer: yes"]


def test_an_inline_cell_asks_with_ask(cell: InteractiveShell) -> None:
    body = ("%%workflow approve --out result\n"
            "yield 'draft\\n'\n"
            "verdict = ask('Ship it?', options=['yes', 'no'])\n"
            "yield f'verdict: {verdict}'\n")
    run(cell, body)
    assert run(cell, "result.event, result.question.options") == ("RunPaused", ["yes", "no"])
    assert len(widget_bundles(cell)) == 1
    run(cell, "final = [r.content for r in result.resume('no')]")
    assert run(cell, "final, verdict") == (["draft\n", "verdict: no"], "no")


def test_wfnb_show_shows_the_form_too(cell: InteractiveShell) -> None:
    run(cell, WORKFLOW)
    response = run(cell, "import wfnb\nwfnb.show(wf.run('pasta'))")
    assert response.event == "RunPaused" and len(widget_bundles(cell)) == 1


def test_a_completed_run_shows_no_form(cell: InteractiveShell) -> None:
    run(cell, WORKFLOW)
    run(cell, "%workflow iter(['no question'])")
    assert widget_bundles(cell) == []


def test_ipywidgets_is_imported_only_when_a_run_asks(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()\n"
        "def cell(source):\n"
        "    assert shell.run_cell(source).success, source\n"
        "    return 'ipywidgets' in sys.modules\n"
        "print(cell('%load_ext wfnb'), cell(\"%workflow iter(['done'])\"), cell(WORKFLOW),\n"
        "      cell(\"%workflow wf.run('pasta')\"))\n"
    ).replace("WORKFLOW", repr(WORKFLOW))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path, env={**os.environ, "WFNB_FRONTEND": "kernel"})
    assert out.stdout.split()[-4:] == ["False", "False", "False", "True"]


def test_a_terminal_prints_the_question_and_how_to_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    _frontend.use("terminal")
    workflow = Outline(session_id="s1", storage=SqliteWorkflowStorage("ask", tmp_path / "a.db"))
    workflow.executed = []
    response = wfnb.show(workflow.run("pasta", question="Ship \x1b[31mit?", options=["yes", "no"]))
    printed = capsys.readouterr().out
    assert response.event == "RunPaused" and response.resume is not None
    assert "[waiting · Outline · session s1 · run " in printed
    assert "The run waits for an answer to 'Ship \\x1b[31mit?'." in printed
    assert "\x1b" not in printed
    assert ("Answer it (one of 'yes', 'no') with workflow.resume('yes'); or in a shell, "
            "wfnb answer s1 yes (with --db and --table naming this storage), then run the "
            "workflow again with the same input.") in printed
