"""HTML in streamed content or in a stored state is shown as text and never runs.

Outputs a kernel produces in this browser session are *trusted* by JupyterLab: their HTML is not
sanitized and their scripts run. A control cell proves that here (its ``<img onerror>`` and
``<script>`` do set a flag), so the absence of ``window.__wfnb_xss`` means wfnb escaped the
payloads, not that the page could not have run them.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator

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
from wfnb import RunResponse, SqliteWorkflowStorage, Workflow

pytestmark = pytest.mark.browser

IMG = '<img src=x onerror="window.__wfnb_xss=1">'
SCRIPT = "<script>window.__wfnb_xss=1</script>"
CONTROL = """from IPython.display import HTML
HTML('<img src=x onerror="window.__wfnb_control_img=1">'
     '<script>window.__wfnb_control_script=1</script>control')"""
STREAM = f"""%%workflow e2e_xss --db tmp/e2e_xss.db
yield "A script in a stream: {SCRIPT}\\n\\n"
yield 'An image with a handler: {IMG}\\n\\n'
yield "<b>raw</b> HTML, then **Markdown**.\\n"
"""


def xss_flag(page: Page) -> object:
    return page.evaluate("window.__wfnb_xss")


def settle(page: Page) -> None:
    """Let images fail to load (their onerror would fire then) and scripts be evaluated."""
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(500)


def test_html_in_streamed_content_is_shown_as_text_and_never_runs(
    page: Page, lab: Lab, shoot: Shooter
) -> None:
    write_notebook(lab.root / "e2e_xss_stream.ipynb", [CONTROL, "%load_ext wfnb", STREAM])
    open_notebook(page, lab, "e2e_xss_stream.ipynb")
    run_all_cells(page)
    wait_until_run(page, lab)
    output_area(page, 2).locator(".wfnb-status", has_text="done").wait_for()
    settle(page)
    shoot("03_xss_stream")

    assert page.evaluate("[window.__wfnb_control_img, window.__wfnb_control_script]") == [1, 1], (
        "control: trusted HTML outputs should run handlers and scripts in this set-up")
    assert xss_flag(page) is None
    shown = output_area(page, 2).inner_text()
    assert SCRIPT in shown
    assert IMG in shown
    assert "<b>raw</b>" in shown
    assert output_area(page, 2).locator("strong", has_text="Markdown").count() == 1
    assert output_area(page, 2).locator("script, img, b").count() == 0
    assert not error_outputs(page)


class Payload(Workflow):
    """A run whose input, output and state all carry the payloads (the Runs tab shows them)."""

    def run(self, topic: str) -> Iterator[RunResponse]:
        self.session_state.update({"note": IMG, IMG: SCRIPT, "list": [IMG, SCRIPT]})
        yield RunResponse(content=f"{IMG}{SCRIPT}")


def test_html_in_a_stored_state_is_shown_as_text_by_the_inspector(
    page: Page, lab: Lab, shoot: Shooter
) -> None:
    if importlib.util.find_spec("wfnb.notebook._inspector") is None:
        pytest.skip("wfnb.notebook._inspector is not there yet: inspector half not tested")
    sid = f"xss {IMG}"  # the id, the workflow's name, keys, values, run input and output
    storage = SqliteWorkflowStorage("e2e_xss", lab.root / "tmp" / "e2e_xss_state.db")
    storage.save(sid, {"note": "plain"}, expected_version=0, workflow_name=IMG)
    for _ in Payload(name=IMG, session_id=sid, storage=storage).run(topic=SCRIPT):
        pass
    storage.close()
    write_notebook(lab.root / "e2e_xss_inspector.ipynb", [
        "%load_ext wfnb",
        "%workflow_state --db tmp/e2e_xss_state.db --table e2e_xss",
    ])
    open_notebook(page, lab, "e2e_xss_inspector.ipynb")
    page.evaluate(CONTROL_IN_PAGE)
    run_all_cells(page)
    wait_until_run(page, lab)
    inspector = page.locator(".wfnb-inspector")
    inspector.locator("option", has_text="xss <img").click()  # select the session
    inspector.get_by_text("version 2", exact=False).first.wait_for()
    # Every tab that shows stored text: the editor, a history diff, the runs, the state tree.
    for tab in ("Edit", "History", "Runs", "State"):
        inspector.get_by_role("tab", name=tab).click()
        if tab == "History":
            inspector.locator("option", has_text=re.compile(r"^v1\b")).click()
            diff = inspector.locator("pre", has_text="onerror").first
            diff.scroll_into_view_if_needed()
            settle(page)
            shoot("03_xss_inspector_history")
    settle(page)
    inspector.locator(".jp-RenderedJSON").first.scroll_into_view_if_needed()
    shoot("03_xss_inspector")

    assert page.evaluate("window.__wfnb_control_ok") == 1, "control: innerHTML runs handlers"
    assert xss_flag(page) is None
    assert IMG in inspector.inner_text()
    assert inspector.locator("img, script").count() == 0
    assert not error_outputs(page)


# The same kind of control in the inspector's page: an HTML payload put into the DOM the way
# an unescaped widget value would be (innerHTML) does run here.
CONTROL_IN_PAGE = """() => {
  const probe = document.createElement('div');
  probe.innerHTML = '<img src=x onerror="window.__wfnb_control_ok=1">';
  document.body.appendChild(probe);
  setTimeout(() => probe.remove(), 2000);
}"""
