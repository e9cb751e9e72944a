"""Notebook 7 (`jupyter notebook`), not only JupyterLab: a ``%%workflow`` cell streams, the state
inspector shows, a write from another process (this test's) appears in the open panel
without a click, a cell that asks is answered in its form, and scrolled out of sight, the panel
stops checking until it is back. One server and one notebook, to keep the browser suite
short."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page

from tests.e2e._lab import Lab, Shooter, run_all_cells, write_notebook
from wfnb import SqliteWorkflowStorage

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(importlib.util.find_spec("notebook") is None,
                       reason="Notebook 7 (pip install notebook) is not installed"),
]

STREAM_CELL = """%%workflow nb7 --db tmp/nb7.db
import time

yield "# Notebook 7\\n\\n"
for n in range(1, 5):
    time.sleep(0.2)
    yield f"- item **{n}** of 4\\n"
session_state["runs"] = session_state.get("runs", 0) + 1
"""
ASK_CELL = """%%workflow nb7_ask --db tmp/nb7.db
yield "an outline\\n\\n"
if ask("Approve this outline?", options=["yes", "no"]) == "yes":
    yield "- the rest, **approved**\\n"
"""
PANEL_CELL = ("%config WorkflowMagics.live_interval = 0.5\n"
              "%workflow_state --db tmp/nb7.db --session-id nb7")
SPACER_CELL = ("import ipywidgets\n"  # room below the panel, to scroll it out of sight
               "spacer = ipywidgets.Box(layout=ipywidgets.Layout(height='4000px'))\n"
               "spacer.add_class('e2e-spacer')\nspacer")


@pytest.fixture(scope="module")
def notebook7(chromium: str, tmp_path_factory: pytest.TempPathFactory,
              output_dir: Path) -> Iterator[Lab]:
    server = Lab.start(tmp_path_factory.mktemp("nb7-root"), tmp_path_factory.mktemp("nb7-home"),
                       output_dir / "notebook7.log", app="notebook")
    yield server
    server.stop()


def test_stream_and_live_inspector_in_notebook_7(
    browser: BrowserContext, notebook7: Lab, output_dir: Path
) -> None:
    write_notebook(notebook7.root / "nb7.ipynb",
                   ["%load_ext wfnb", STREAM_CELL, PANEL_CELL, ASK_CELL, SPACER_CELL])
    page: Page = browser.new_page()
    try:
        page.goto(f"{notebook7.url}/notebooks/nb7.ipynb")
        page.locator(".jp-Notebook .jp-CodeCell").first.wait_for()
        deadline = time.monotonic() + 60
        while not notebook7.kernel_ready("nb7.ipynb"):
            assert time.monotonic() < deadline, "no idle kernel for nb7.ipynb after 60 s"
            page.wait_for_timeout(100)
        run_all_cells(page)
        first = page.locator(".jp-Notebook .jp-CodeCell").nth(1).locator(".jp-OutputArea")
        first.locator("text=item 4 of 4").wait_for()
        first.locator(".wfnb-status", has_text="done").wait_for()
        inspector = page.locator(".wfnb-inspector")
        inspector.get_by_text("session 'nb7', version 1").wait_for()
        assert inspector.locator("option", has_text="from-elsewhere").count() == 0

        writer = SqliteWorkflowStorage("notebook_workflows", notebook7.root / "tmp" / "nb7.db")
        writer.save("from-elsewhere", {"by": "another process"}, expected_version=0)
        writer.save("nb7", {"runs": 5}, expected_version=1)
        writer.close()
        inspector.locator("option", has_text="from-elsewhere").wait_for(timeout=15_000)
        inspector.get_by_text("session 'nb7' updated by another writer: now version 2"
                              ).wait_for(timeout=15_000)
        Shooter(page, output_dir)("notebook7_live_inspector")

        form = page.locator(".jp-Notebook .jp-CodeCell").nth(3).locator(".wfnb-ask")
        form.get_by_role("button", name="yes").click()
        form.locator(".wfnb-status", has_text="done").wait_for()
        assert "the rest, approved" in form.inner_text()
        assert form.get_by_role("button", name="yes").is_disabled()
        # the snapshot output under the panel is hidden while the panel renders
        snapshot = page.locator(".wfnb-snapshot")
        assert snapshot.count() == 1 and not snapshot.is_visible()

        # scrolled out of sight, the panel stops checking: a write does not show ...
        seen = inspector.locator(".wfnb-visibility input")
        page.locator(".e2e-spacer").evaluate("e => e.scrollIntoView({block: 'end'})")
        page.wait_for_function("document.querySelector('.wfnb-visibility input').value "
                               "=== 'hidden'", timeout=10_000)
        writer = SqliteWorkflowStorage("notebook_workflows", notebook7.root / "tmp" / "nb7.db")
        writer.save("while-hidden", {"by": "another process"}, expected_version=0)
        page.wait_for_timeout(3_000)  # six check intervals
        assert seen.count() == 1  # the panel is still in the page, not refreshed
        assert inspector.locator("option", has_text="while-hidden").count() == 0
        # ... until it is back in sight: then it checks at once
        inspector.evaluate("e => e.scrollIntoView({block: 'start'})")
        inspector.locator("option", has_text="while-hidden").wait_for(timeout=5_000)
        assert seen.input_value() == "visible"
        writer.close()
    except Exception:
        page.screenshot(path=output_dir / "FAILED-notebook7.png")
        raise
    finally:
        page.close()
        notebook7.shut_down_kernels()
