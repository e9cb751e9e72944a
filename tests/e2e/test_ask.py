"""A run that asks, answered in JupyterLab: the cell shows the outline, a "waiting" status line
and a form; clicking "yes" continues the same run, whose rest streams into the same output (the
outline step served from its record) until it asks again, in a second form below, answered the
same way; a free-text question is answered by typing and Submit."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page

from tests.e2e._lab import (
    Lab,
    Shooter,
    error_outputs,
    open_notebook,
    output_area,
    run_all_cells,
    wait_until_run,
    write_notebook,
)
from wfnb import SqliteWorkflowStorage

pytestmark = pytest.mark.browser

ITEMS = 6
WORKFLOW_CELL = f"""import time
from wfnb import SqliteWorkflowStorage, Workflow, step

class Post(Workflow):
    @step
    def outline(self, topic):
        return f"## Outline\\n\\n1. why {{topic}}\\n2. how\\n\\n"

    def run(self, topic):
        yield self.outline(topic)
        if self.ask("Approve this outline?", options=["yes", "no"]) == "yes":
            for n in range(1, {ITEMS + 1}):
                time.sleep(0.3)
                yield f"- section **{{n}}** written\\n"
            if self.ask("Publish now?", options=["publish", "later"]) == "publish":
                yield "\\n**published**\\n"

post = Post(session_id="e2e_ask", storage=SqliteWorkflowStorage("asks", "tmp/e2e_ask.db"))
"""
ASK_CELL = '%workflow post.run("pasta")'
TEXT_CELL = """%%workflow e2e_title --db tmp/e2e_ask.db --table asks
yield "a draft\\n\\n"
title = ask("Title of the post?", default="Pasta at home")
yield f"title: **{title}**"
"""

# Samples the form's output every 100 ms in the page, so the test's own pace cannot hide or
# invent steps: how many sections it shows, and whether its final status line is there.
SAMPLER = """([index]) => {
  const cell = document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell')[index];
  window.__wfnb_samples = [];
  const timer = setInterval(() => {
    const form = cell.querySelector('.wfnb-ask');
    const items = form ? form.querySelectorAll('li').length : 0;
    const done = form ? [...form.querySelectorAll('.wfnb-status')]
        .some(s => !s.textContent.startsWith('running')) : false;
    window.__wfnb_samples.push({items, done});
    if (done) clearInterval(timer);
  }, 100);
}"""


def test_clicking_yes_streams_the_rest_of_the_run_into_the_same_output(
    page: Page, lab: Lab, shoot: Shooter
) -> None:
    write_notebook(lab.root / "e2e_ask.ipynb",
                   ["%load_ext wfnb", WORKFLOW_CELL, ASK_CELL, TEXT_CELL])
    open_notebook(page, lab, "e2e_ask.ipynb")
    run_all_cells(page)
    wait_until_run(page, lab)

    area = output_area(page, 2)
    assert area.locator(".wfnb-status").last.inner_text().startswith(
        "waiting · Post · session e2e_ask")
    form = area.locator(".wfnb-ask").first
    form.get_by_text("Approve this outline?").wait_for()
    assert "section" not in area.inner_text()
    area.scroll_into_view_if_needed()
    shoot("ask_01_form")

    page.evaluate(SAMPLER, [2])
    form.get_by_role("button", name="yes").click()
    second = form.locator(".wfnb-ask")  # the continued run asked again: a form below
    second.get_by_text("Publish now?").wait_for(timeout=30_000)
    samples: list[dict[str, Any]] = page.evaluate("window.__wfnb_samples")
    counts = sorted({sample["items"] for sample in samples if not sample["done"]})
    assert len(counts) >= 3, f"the rest arrived in {len(counts)} visible steps: {samples}"
    form.locator(".wfnb-status").last.scroll_into_view_if_needed()
    shoot("ask_02_answered")

    assert form.locator("li", has_text="written").count() == ITEMS
    assert form.locator("li", has_text="why pasta").count() == 0  # replayed, shown above
    assert form.get_by_role("button", name="yes").is_disabled()
    assert form.get_by_role("button", name="no").is_disabled()
    assert "answered 'yes'" in form.inner_text()
    assert form.locator(".wfnb-status").first.inner_text().startswith(
        "waiting · Post · session e2e_ask")

    second.get_by_role("button", name="publish").click()
    second.locator(".wfnb-status", has_text="done").wait_for(timeout=30_000)
    assert second.locator("strong", has_text="published").count() == 1
    assert second.locator("li").count() == 0  # the sections were shown above it
    status = second.locator(".wfnb-status").last.inner_text()
    assert status.startswith("done · Post · session e2e_ask") and "0 run, 1 served" in status
    second.locator(".wfnb-status").last.scroll_into_view_if_needed()
    shoot("ask_03_second_question_answered")
    assert_one_run_with_the_step_served(lab)

    text_form = output_area(page, 3).locator(".wfnb-ask")
    box = text_form.locator("input[type=text]")
    assert box.input_value() == "Pasta at home"
    box.fill("Risotto <b>tonight</b>")
    text_form.get_by_role("button", name="Submit").click()
    text_form.locator(".wfnb-status", has_text="done").wait_for(timeout=30_000)
    assert "title: Risotto <b>tonight</b>" in text_form.inner_text()  # shown as text
    assert text_form.locator("strong b").count() == 0
    assert not error_outputs(page)


def assert_one_run_with_the_step_served(lab: Lab) -> None:
    """What the database says: one run, both answers, the outline executed once then served."""
    storage = SqliteWorkflowStorage("asks", lab.root / "tmp" / "e2e_ask.db")
    try:
        [run] = storage.runs("e2e_ask")
        assert run.status == "completed"
        assert [a.answer for a in run.answers] == ["yes", "publish"]
        assert [s.cached for s in storage.steps("e2e_ask")] == [False, True, True]
    finally:
        storage.close()
