"""The state inspector in JupyterLab, used as a person uses it: click a session, open Edit, type
JSON, click Save; the database (read from the test process) holds the new version. Invalid JSON
shows the error and writes nothing. A write from another process shows without a click."""

from __future__ import annotations

import importlib.util
import re

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e._lab import (
    Lab,
    Shooter,
    error_outputs,
    open_notebook,
    run_all_cells,
    wait_until_run,
    write_notebook,
)
from wfnb import SqliteWorkflowStorage, WorkflowStorage

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(importlib.util.find_spec("wfnb.notebook._inspector") is None,
                       reason="wfnb.notebook._inspector (the StateInspector) is not there yet"),
]

TABLE = "e2e_inspector"
EDITED = '{"count": 2, "topics": ["pasta", "sourdough bread"], "note": "edited in the browser"}'
INVALID = '{"count": 3, "topics": ["pasta",'


def replace_text(page: Page, editor: Locator, text: str) -> None:
    """Click into the editor, select everything, and type ``text`` over it."""
    editor.click()
    page.keyboard.press("ControlOrMeta+A")
    page.keyboard.press("Delete")
    editor.press_sequentially(text)


def show_from_top(element: Locator) -> None:
    """Scroll so that ``element`` starts at the top of the notebook's view."""
    element.evaluate("e => e.scrollIntoView({block: 'start'})")


def open_inspector(page: Page, lab: Lab, name: str) -> tuple[WorkflowStorage, Locator]:
    """A database ``tmp/NAME.db`` (for the test to fill) and a notebook ``NAME.ipynb`` showing an
    inspector over it, opened and run in JupyterLab: the storage and the panel."""
    db = lab.root / "tmp" / f"{name}.db"
    storage = SqliteWorkflowStorage(TABLE, db)
    write_notebook(lab.root / f"{name}.ipynb", [
        "import wfnb\n\n"
        f'storage = wfnb.SqliteWorkflowStorage("{TABLE}", "tmp/{db.name}")\n'
        "wfnb.StateInspector(storage, page_size=5)",
    ])
    return storage, page.locator(".wfnb-inspector")


def run_inspector(page: Page, lab: Lab, name: str) -> None:
    """Open ``NAME.ipynb``, run it, and wait for the panel."""
    open_notebook(page, lab, f"{name}.ipynb")
    run_all_cells(page)
    wait_until_run(page, lab)
    page.locator(".wfnb-inspector").wait_for()


def test_a_state_is_edited_and_saved_by_clicks_and_typing(
    page: Page, lab: Lab, shoot: Shooter
) -> None:
    storage, inspector = open_inspector(page, lab, "e2e_inspector")
    storage.save("alpha", {"count": 1, "topics": ["pasta"]}, expected_version=0,
                 workflow_name="BlogPostGenerator")
    storage.save("beta", {"count": 7}, expected_version=0, workflow_name="BlogPostGenerator")
    storage.save("team-notes", {"count": 3}, expected_version=0, workflow_name="notes")
    run_inspector(page, lab, "e2e_inspector")

    inspector.locator("option", has_text="alpha").click()
    inspector.get_by_text("session 'alpha', version 1").wait_for()
    inspector.get_by_role("tab", name="Edit").click()
    editor = inspector.locator("textarea")
    # the state's text reaches the browser when the Edit tab opens (a 1 MB state is sent once)
    expect(editor).to_have_value(re.compile('"pasta"'))

    replace_text(page, editor, EDITED)
    inspector.get_by_role("button", name="Save").click()
    inspector.get_by_text("save: stored as version 2").wait_for()
    show_from_top(inspector)
    shoot("02_inspector_saved", docs="inspector.png")

    stored = storage.read("alpha")
    assert stored is not None
    assert stored.version == 2
    assert stored.session_state == {
        "count": 2, "topics": ["pasta", "sourdough bread"], "note": "edited in the browser"}
    assert storage.history("alpha")[0].source == "edit"
    versions = {summary.session_id: summary.version for summary in storage.list_sessions()}
    assert versions == {"alpha": 2, "beta": 1, "team-notes": 1}

    replace_text(page, editor, INVALID)
    inspector.get_by_role("button", name="Save").click()
    error = inspector.get_by_text("not saved: the text is not valid JSON")
    error.wait_for()
    show_from_top(inspector)
    shoot("02_inspector_invalid_json")

    assert editor.input_value() == INVALID  # the text stays for fixing
    after = storage.read("alpha")
    assert after is not None
    assert after.version == 2
    assert after.session_state == stored.session_state
    assert [v.version for v in storage.history("alpha")] == [2, 1]

    # another process (this test) writes: the open panel shows it within a few seconds, no
    # click, and the unsaved (invalid) text stays in the editor
    storage.save("gamma", {"count": 9}, expected_version=0, workflow_name="notes")
    storage.save("alpha", {"count": 4}, expected_version=2)
    inspector.locator("option", has_text="gamma").wait_for(timeout=15_000)
    inspector.get_by_text("session 'alpha' was saved by another writer (now version 3); your "
                          "unsaved edit of version 2 is kept").wait_for(timeout=15_000)
    assert editor.input_value() == INVALID
    assert not error_outputs(page)
    storage.close()


def test_the_fork_button_starts_a_session_from_the_picked_version(
    page: Page, lab: Lab, shoot: Shooter
) -> None:
    storage, inspector = open_inspector(page, lab, "e2e_fork")
    for version in range(1, 4):
        storage.save("draft", {"step": version, "text": "lorem " * 1000},
                     expected_version=version - 1, workflow_name="BlogPostGenerator")
    storage.save("other", {"step": 0}, expected_version=0, workflow_name="notes")
    before = storage.history("draft")
    run_inspector(page, lab, "e2e_fork")

    inspector.locator("option", has_text="draft").click()
    inspector.get_by_text("session 'draft', version 3").wait_for()
    inspector.get_by_role("tab", name="History").click()
    # a Select shows its labels' spaces as no-break spaces (\s matches both)
    inspector.locator("option").filter(has_text=re.compile(r"^v2\s")).click()
    inspector.get_by_placeholder("new session id (default: a fresh uuid)").fill("draft-try")
    inspector.get_by_role("button", name="Fork").click()
    inspector.get_by_text("forked session 'draft' version 2 as 'draft-try': now shown").wait_for()
    # listed, selected, and its history says where it came from
    inspector.locator("option", has_text="draft-try").wait_for()
    inspector.locator("option", has_text=re.compile(r"forked\sfrom\sdraft\sv2$")).wait_for()

    forked, source = storage.read("draft-try"), storage.read("draft", 2)
    assert forked is not None and source is not None
    assert forked.document == source.document and forked.session_state["step"] == 2
    assert forked.workflow_name == "BlogPostGenerator"
    (first,) = storage.history("draft-try")
    assert (first.source, first.forked_from_session, first.forked_from_version) == (
        "fork", "draft", 2)
    assert storage.history("draft") == before  # the source is untouched

    compare = inspector.get_by_placeholder("compare with session…")
    compare.fill("draft")
    compare.press("Enter")
    inspector.get_by_text("compared with session 'draft': 2 lines differ").wait_for()
    show_from_top(inspector)
    shoot("02_inspector_fork")
    assert not error_outputs(page)
    storage.close()
