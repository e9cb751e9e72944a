"""A ``%%workflow`` cell streams in JupyterLab: its output grows in visible steps, then the
final Markdown is rendered as HTML under a "done" status line."""

from __future__ import annotations

import itertools
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

pytestmark = pytest.mark.browser

ITEMS = 8
STREAM_CELL = f"""%%workflow e2e_stream --db tmp/e2e_stream.db
import time

yield "# Streaming in the browser\\n\\nA list that arrives one item at a time:\\n\\n"
for n in range(1, {ITEMS + 1}):
    time.sleep(0.3)
    yield f"- item **{{n}}** of {ITEMS}: *rendered as Markdown while it streams*\\n"
yield "\\nAll **{ITEMS}** items arrived; the run's state is in `session_state`.\\n"
session_state["runs"] = session_state.get("runs", 0) + 1
"""

# Samples the cell's output every 100 ms in the page itself, so the test process's own pace
# cannot hide or invent steps: the length of the streamed text (status lines left out) and
# whether a final status line ("done · ..." or any state other than "running") is there.
SAMPLER = """([index]) => {
  const cell = document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell')[index];
  window.__wfnb_samples = [];
  window.__wfnb_final = false;
  const sample = () => {
    const area = cell.querySelector('.jp-OutputArea');
    const statuses = area ? [...area.querySelectorAll('.wfnb-status')] : [];
    const statusLength = statuses.reduce((n, s) => n + s.textContent.length, 0);
    const length = area ? area.textContent.length - statusLength : 0;
    const final = statuses.some(s => !s.textContent.startsWith('running'));
    window.__wfnb_samples.push({length, final, t: performance.now()});
    if (final) { window.__wfnb_final = true; clearInterval(timer); }
  };
  const timer = setInterval(sample, 100);
}"""


def growing_steps(samples: list[dict[str, Any]]) -> list[int]:
    """The lengths seen before the final status line, each longer than all before it."""
    steps: list[int] = []
    for sample in samples:
        if sample["final"]:
            break
        if sample["length"] > (steps[-1] if steps else 0):
            steps.append(sample["length"])
    return steps


def test_a_workflow_cell_streams_in_steps_then_shows_rendered_markdown(
    page: Page, lab: Lab, shoot: Shooter
) -> None:
    write_notebook(lab.root / "e2e_streaming.ipynb", ["%load_ext wfnb", STREAM_CELL])
    open_notebook(page, lab, "e2e_streaming.ipynb")
    page.evaluate(SAMPLER, [1])
    run_all_cells(page)

    area = output_area(page, 1)
    area.locator("li").nth(2).wait_for()  # a few items in, still running
    if not page.evaluate("window.__wfnb_final"):
        area.scroll_into_view_if_needed()
        shoot("01_streaming_running", docs="streaming.png")
    page.wait_for_function("window.__wfnb_final === true", polling=100)
    wait_until_run(page, lab)
    shoot("01_streaming_done")

    samples: list[dict[str, Any]] = page.evaluate("window.__wfnb_samples")
    steps = growing_steps(samples)
    assert len(steps) >= 3, f"the output grew in {len(steps)} visible steps: {samples}"

    status = area.locator(".wfnb-status").last.inner_text()
    assert status.startswith("done · e2e_stream · session e2e_stream"), status
    assert area.locator("h1").inner_text() == "Streaming in the browser"
    items = area.locator("li")
    assert items.count() == ITEMS
    assert items.nth(ITEMS - 1).locator("strong").inner_text() == str(ITEMS)
    assert items.nth(0).locator("em").inner_text() == "rendered as Markdown while it streams"
    assert area.locator("code", has_text="session_state").count() == 1
    assert not error_outputs(page)


PIECES_SETUP = """import wfnb
from IPython.display import publish_display_data
from wfnb.notebook._markdown import to_html

SHAPES = {
    "code": "```python\\n" + "".join(f"if value < {n}:  # <b>{n}</b>\\n    total += {n}\\n"
                                     for n in range(25)) + "```\\n",
    "ordered": "Steps:\\n\\n" + "".join(f"1. step {n}: `a < {n}` **done**\\n" for n in range(30)),
    "bullets": "".join(f"- item {n}: some *words* here\\n"
                       + ("  - nested a\\n  - nested b\\n" if n % 7 == 3 else "")
                       for n in range(30)),
    "table": "| # | name | value | note |\\n| --- | --- | ---: | --- |\\n" + "".join(
        f"| {n} | `x{n}` | {n * 7 % 1000} | {'word ' * (n % 5 + 1)}|\\n" for n in range(30)),
}

def streamed(name):
    text = SHAPES[name]
    wfnb.show(iter([text[i:i + 17] for i in range(0, len(text), 17)]), freeze_chars=200)

def whole(name):
    html = "<div class='wfnb-md'>" + to_html(SHAPES[name]) + "</div>"
    publish_display_data({"text/html": html, "text/plain": SHAPES[name]})
"""

# Per cell: how many pieces (outputs with Markdown), the height from the first piece's top to
# the last one's bottom, the left edge of every cell of each table's first body row, and the
# start number and item count of each ordered list.
MEASURE = """(index) => {
  const area = document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell')[index]
      .querySelector('.jp-OutputArea');
  const pieces = [...area.querySelectorAll('.wfnb-md')];
  const top = pieces[0].getBoundingClientRect().top;
  const bottom = pieces[pieces.length - 1].getBoundingClientRect().bottom;
  const columns = [...area.querySelectorAll('table')].map(table =>
      [...table.querySelectorAll('tbody tr:first-child td')]
          .map(cell => Math.round(cell.getBoundingClientRect().left)));
  const lists = [...area.querySelectorAll('.wfnb-md > ol')];
  const starts = lists.map(ol => ol.start);
  const items = lists.map(ol => ol.querySelectorAll(':scope > li').length);
  return {pieces: pieces.length, height: bottom - top, columns, starts, items};
}"""


def test_long_blocks_streamed_in_pieces_look_like_one_block(
    page: Page, lab: Lab, shoot: Shooter
) -> None:
    """Cut into pieces while they stream, a code block, lists and a table take the same room as
    the same Markdown rendered at once: no gaps at the seams, no repeated header, columns that
    line up, and an ordered list that keeps counting."""
    shapes = ["code", "ordered", "bullets", "table"]
    cells = [PIECES_SETUP]
    for shape in shapes:
        cells += [f"streamed({shape!r})", f"whole({shape!r})"]
    write_notebook(lab.root / "e2e_pieces.ipynb", cells)
    open_notebook(page, lab, "e2e_pieces.ipynb")
    run_all_cells(page)
    wait_until_run(page, lab)
    assert not error_outputs(page)

    for number, shape in enumerate(shapes):
        cell = 1 + 2 * number
        output_area(page, cell).scroll_into_view_if_needed()
        shoot(f"02_pieces_{shape}")
        streamed, whole = page.evaluate(MEASURE, cell), page.evaluate(MEASURE, cell + 1)
        assert streamed["pieces"] >= 4 and whole["pieces"] == 1, shape
        assert abs(streamed["height"] - whole["height"]) <= 1, (shape, streamed, whole)
        if shape == "table":
            assert len(streamed["columns"]) == streamed["pieces"]
            assert all(columns == streamed["columns"][0] for columns in streamed["columns"])
        if shape == "ordered":
            assert streamed["starts"][0] == 1
            assert [b - a for a, b in itertools.pairwise(streamed["starts"])] \
                == streamed["items"][:-1]
            assert sum(streamed["items"]) == 30
