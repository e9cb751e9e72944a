"""The state inspector at the widget-model level (no browser), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.interactiveshell import InteractiveShell

import wfnb
from tests.conftest import StorageFactory
from wfnb import RunResponse, SaveResult, SqliteWorkflowStorage, Usage, Workflow, WorkflowStorage
from wfnb.notebook import _frontend, _inspector
from wfnb.notebook._inspector import StateInspector

XSS = "<img src=x onerror=alert(1)>"
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"
Inspect = Callable[..., StateInspector]


@pytest.fixture
def inspect() -> Iterator[Inspect]:
    """Make inspectors; each is closed after the test (so later runs do not refresh it)."""
    made: list[StateInspector] = []

    def make(storage: WorkflowStorage, **kwargs: Any) -> StateInspector:
        inspector = StateInspector(storage, **kwargs)
        made.append(inspector)
        return inspector

    yield make
    for inspector in made:
        inspector.close()


def seed(storage: WorkflowStorage, count: int) -> None:
    """Sessions s0..s{count-1}, oldest first, of workflows W0, W1, W2 in turn."""
    for number in range(count):
        storage.save(f"s{number}", {"n": number, "tags": ["a", "b"]}, expected_version=0,
                     workflow_name=f"W{number % 3}")


def stored(storage: WorkflowStorage, session_id: str) -> dict[str, Any]:
    session = storage.read(session_id)
    assert session is not None
    return session.session_state


def html_values(inspector: StateInspector) -> list[str]:
    """Every piece of HTML the panel holds: HTML widgets and the Output's text/html."""
    found = []
    for widget in inspector.view.widgets():
        if type(widget).__name__ in ("HTML", "HTMLMath"):
            found.append(str(widget.value))
        for output in getattr(widget, "outputs", ()):
            found.append(output["data"].get("text/html", ""))
    return found


# -- the list ------------------------------------------------------------------------------


def test_pages_list_newest_first(storage: WorkflowStorage, inspect: Inspect) -> None:
    seed(storage, 45)
    inspector = inspect(storage)
    assert (inspector.page, inspector.pages) == (1, 3)
    assert inspector.sessions == [f"s{n}" for n in range(44, 24, -1)]
    assert inspector.widget._dom_classes == ("wfnb-inspector", inspector.display.panel_class)
    assert inspector.next_page() and inspector.page == 2
    assert inspector.sessions[0] == "s24"
    inspector.view.next.click()  # the button is the method
    assert inspector.page == 3 and inspector.sessions == [f"s{n}" for n in range(4, -1, -1)]
    assert inspector.view.next.disabled and not inspector.view.prev.disabled
    inspector.next_page()
    assert inspector.page == 3
    inspector.view.prev.click()
    assert inspector.page == 2 and inspector.view.page_label.value == "page 2 of 3 · 45 sessions"


def test_search_matches_part_of_the_id(storage: WorkflowStorage, inspect: Inspect) -> None:
    seed(storage, 45)
    inspector = inspect(storage)
    inspector.next_page()
    assert inspector.search("s1")
    assert inspector.page == 1 and inspector.pages == 1
    assert sorted(inspector.sessions) == sorted(["s1", *(f"s1{n}" for n in range(10))])
    assert inspector.status == "11 sessions where id contains 's1'"
    assert inspector.view.search_box.value == "s1"
    inspector.view.search_box.value = "s4"  # typing in the box searches too
    assert inspector.sessions == ["s44", "s43", "s42", "s41", "s40", "s4"]
    inspector.search("%")  # a literal character, not a wildcard
    assert inspector.sessions == [] and inspector.pages == 1


def test_workflow_filter(storage: WorkflowStorage, inspect: Inspect) -> None:
    seed(storage, 45)
    inspector = inspect(storage)
    assert inspector.view.workflow_box.options == ("all workflows", "W0", "W1", "W2")
    assert inspector.filter_workflow("W1")
    assert inspector.sessions[:3] == ["s43", "s40", "s37"] and inspector.pages == 1
    inspector.search("s1")
    assert inspector.sessions == ["s19", "s16", "s13", "s10", "s1"]
    assert inspector.status == "5 sessions where id contains 's1' and workflow 'W1'"
    inspector.view.workflow_box.index = 0  # the dropdown is the method
    assert len(inspector.sessions) == 11


# -- the selected session ------------------------------------------------------------------


def test_select_shows_state_history_and_metadata(
    storage: WorkflowStorage, inspect: Inspect
) -> None:
    seed(storage, 3)
    inspector = inspect(storage)
    assert inspector.select("s1")
    assert json.loads(inspector.state_text) == {"n": 1, "tags": ["a", "b"]}
    assert inspector.status == "session 's1', version 1"
    assert [v.version for v in inspector.history] == [1]
    assert "W1" in inspector.view.meta.value and "keys (2)" in inspector.view.meta.value
    (output,) = inspector.view.tree.outputs
    assert output["data"]["application/json"] == {"n": 1, "tags": ["a", "b"]}
    assert output["metadata"]["application/json"]["root"] == "s1"
    # the state travels once: no HTML or plain-text copy of it beside the tree
    assert set(output["data"]) == {"application/json", "text/plain"}
    assert output["data"]["text/plain"] == "s1: a JSON state of 24 B (its text is in the Edit tab)"
    inspector.view.rows.value = "s2"  # clicking a row selects it
    assert inspector.selected == "s2" and json.loads(inspector.state_text)["n"] == 2
    assert not inspector.select("nope") and "no session 'nope'" in inspector.status


def test_construct_with_a_session_selects_it(storage: WorkflowStorage, inspect: Inspect) -> None:
    seed(storage, 30)
    inspector = inspect(storage, page_size=5, session_id="s2")  # not on the first page
    assert inspector.selected == "s2" and inspector.view.rows.value is None
    assert inspector.pages == 6 and len(inspector.sessions) == 5


def test_tagged_types_round_trip_through_the_editor(
    storage: WorkflowStorage, inspect: Inspect
) -> None:
    when = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc)
    storage.save("t", {"when": when, "pair": (1, 2), "n": 1}, expected_version=0)
    inspector = inspect(storage, session_id="t")
    assert '"$wfnb": "datetime"' in inspector.state_text
    inspector.state_text = inspector.state_text.replace('"n": 1', '"n": 2')
    assert inspector.save(), inspector.status
    assert stored(storage, "t") == {"when": when, "pair": (1, 2), "n": 2}


# -- saving --------------------------------------------------------------------------------


def test_edit_and_save_appends_a_version_from_edit(
    storage: WorkflowStorage, inspect: Inspect
) -> None:
    seed(storage, 2)
    inspector = inspect(storage, session_id="s0")
    inspector.state_text = '{"n": 99, "note": "edited"}'
    inspector.view.save_button.click()
    assert inspector.status == "save: stored as version 2"
    assert stored(storage, "s0") == {"n": 99, "note": "edited"}
    assert [(v.version, v.source) for v in storage.history("s0")] == [(2, "edit"), (1, "save")]
    assert [v.version for v in inspector.history] == [2, 1]
    assert inspector.sessions[0] == "s0"  # re-listed: now the newest
    assert json.loads(inspector.state_text) == {"n": 99, "note": "edited"}
    assert inspector.save() and "no change" in inspector.status
    assert len(storage.history("s0")) == 2


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"n": ', "not valid JSON: Expecting value: line 1 column 7"),
        ('{"n": NaN}', "NaN is not valid JSON"),
        ("[1, 2]", "must be a JSON object {...}, not a JSON array"),
        ('"text"', "not a JSON string"),
        ('{"a": {"b": [123456789012345678901234567890]}}',
         'session_state["a"]["b"][0]: integer does not fit in 64 bits'),
        ('{"a": {"$wfnb": "x"}}', "the key '$wfnb' is reserved"),
    ],
    ids=["syntax", "nan", "array", "string", "big-int", "reserved-key"],
)
def test_save_refuses_what_cannot_be_stored(
    storage: WorkflowStorage, inspect: Inspect, text: str, says: str
) -> None:
    seed(storage, 1)
    inspector = inspect(storage, session_id="s0")
    inspector.state_text = text
    assert not inspector.save()
    assert inspector.status.startswith("not saved: ") and says in inspector.status
    assert "color:#cf222e" in inspector.view.status_html.value  # shown as an error
    assert [v.version for v in storage.history("s0")] == [1]
    assert inspector.state_text == text  # the edit stays for fixing


def test_save_refuses_when_another_writer_saved_meanwhile(
    make_storage: StorageFactory, inspect: Inspect
) -> None:
    storage, other = make_storage(), make_storage()
    storage.save("s", {"a": 1, "b": 1}, expected_version=0)
    inspector = inspect(storage, session_id="s")
    other.save("s", {"a": 1, "b": 2}, expected_version=1, source="save")  # another key...
    inspector.state_text = '{"a": 5, "b": 1}'  # ...than this edit: would merge, must not
    assert not inspector.save()
    assert "changed since you loaded version 1: it is now version 2, written by a save" in (
        inspector.status)
    assert "Nothing was written" in inspector.status
    diff = inspector.view.edit_diff.value
    assert "version 1 (loaded)" in diff and "-  &quot;b&quot;: 1" in diff
    assert "+  &quot;b&quot;: 2" in diff
    assert stored(storage, "s") == {"a": 1, "b": 2} and len(storage.history("s")) == 2
    assert inspector.state_text == '{"a": 5, "b": 1}'
    assert inspector.refresh() and json.loads(inspector.state_text) == {"a": 1, "b": 2}
    assert not inspector.dirty


@pytest.mark.parametrize(("their_key", "merged"), [("b", True), ("a", False)])
def test_a_writer_slipping_in_between_is_caught_and_reported(
    make_storage: StorageFactory, inspect: Inspect, monkeypatch: pytest.MonkeyPatch,
    their_key: str, merged: bool,
) -> None:
    storage, other = make_storage(), make_storage()
    storage.save("s", {"a": 1, "b": 1}, expected_version=0)
    inspector = inspect(storage, session_id="s")
    save = storage.save

    def racing_save(*args: Any, **kwargs: Any) -> SaveResult:
        other.save("s", {"a": 1, "b": 1, their_key: 7}, expected_version=1)
        return save(*args, **kwargs)

    monkeypatch.setattr(storage, "save", racing_save)
    inspector.state_text = '{"a": 5, "b": 1}'
    if merged:  # the storage merged their key into the edit: say so, show the result
        assert inspector.save()
        assert "another writer saved in between" in inspector.status
        assert "'b'" in inspector.status
        assert stored(storage, "s") == {"a": 5, "b": 7}
        assert json.loads(inspector.state_text) == {"a": 5, "b": 7}
    else:  # the same key: the swap refuses, nothing of the edit is written
        assert not inspector.save()
        assert "it is now version 2" in inspector.status
        assert stored(storage, "s") == {"a": 7, "b": 1}


def test_revert_puts_the_loaded_text_back(storage: WorkflowStorage, inspect: Inspect) -> None:
    seed(storage, 1)
    inspector = inspect(storage, session_id="s0")
    loaded = inspector.state_text
    inspector.state_text = "{oops"
    assert inspector.dirty
    inspector.view.revert_button.click()
    assert inspector.state_text == loaded and not inspector.dirty
    assert inspector.status == "editor reverted to version 1"
    assert len(storage.history("s0")) == 1


# -- deleting ------------------------------------------------------------------------------


def test_delete_asks_first_then_deletes(storage: WorkflowStorage, inspect: Inspect) -> None:
    seed(storage, 3)
    inspector = inspect(storage, session_id="s1")
    inspector.view.delete_button.click()
    assert "Click Delete again to confirm" in inspector.status
    assert inspector.view.delete_button.description == "Confirm"
    assert storage.read("s1") is not None
    inspector.revert()  # anything else cancels
    assert inspector.view.delete_button.description == "Delete"
    assert not inspector.delete() and storage.read("s1") is not None
    assert inspector.delete()  # the second click
    assert storage.read("s1") is None and storage.runs("s1") == []
    assert inspector.status == "deleted session 's1' with its history and runs"
    assert inspector.selected is None and inspector.sessions == ["s2", "s0"]
    assert inspector.state_text == "" and inspector.history == []
    assert not inspector.delete(confirm=True) and "select a session first" in inspector.status


def test_delete_with_confirm_and_refused_when_changed(
    make_storage: StorageFactory, inspect: Inspect
) -> None:
    storage, other = make_storage(), make_storage()
    seed(storage, 2)
    inspector = inspect(storage, session_id="s0")
    other.save("s0", {"n": 5}, expected_version=1)
    assert not inspector.delete(confirm=True)
    assert "delete refused" in inspector.status and "now version 2" in inspector.status
    assert storage.read("s0") is not None
    inspector.select("s1")
    assert inspector.delete(confirm=True) and storage.read("s1") is None


# -- files ---------------------------------------------------------------------------------


def test_export_then_import_round_trip(
    storage: WorkflowStorage, inspect: Inspect, tmp_path: Path
) -> None:
    storage.save("s", {"text": "héllo", "items": [1, 2.5, None]}, expected_version=0)
    inspector = inspect(storage, session_id="s")
    path = tmp_path / "s.json"
    assert inspector.export(path), inspector.status
    assert json.loads(path.read_text("utf-8")) == {"text": "héllo", "items": [1, 2.5, None]}
    inspector.state_text = '{"text": "changed"}'
    assert inspector.save()
    inspector.view.path_box.value = str(path)
    inspector.view.import_button.click()  # the path box is used
    assert "review it, then Save" in inspector.status and len(storage.history("s")) == 2
    assert inspector.save()
    assert stored(storage, "s") == {"text": "héllo", "items": [1, 2.5, None]}
    bad = tmp_path / "bad.json"
    bad.write_text("[1]", encoding="utf-8")
    text = inspector.state_text
    assert not inspector.import_(bad) and "refused" in inspector.status
    assert inspector.state_text == text
    assert not inspector.import_(tmp_path / "missing.json")
    assert "import failed" in inspector.status


# -- history -------------------------------------------------------------------------------


def test_history_diff_and_restore(storage: WorkflowStorage, inspect: Inspect) -> None:
    storage.save("s", {"a": 1, "b": "old"}, expected_version=0)
    inspector = inspect(storage, session_id="s")
    inspector.state_text = '{"a": 1, "b": "new"}'
    inspector.save()
    diff = inspector.diff(1)
    assert diff.splitlines()[:2] == ["--- s version 1", "+++ s version 2 (current)"]
    assert '-  "b": "old"' in diff and '+  "b": "new"' in diff
    assert inspector.diff(2) == ""
    inspector.view.versions.value = 1  # picking a version shows its diff
    assert "&quot;b&quot;: &quot;old&quot;" in inspector.view.history_diff.value
    inspector.view.restore_button.click()  # restores the picked version
    assert inspector.status == "restore version 1: stored as version 3"
    assert stored(storage, "s") == {"a": 1, "b": "old"}
    assert [(v.version, v.source) for v in inspector.history][:1] == [(3, "restore")]
    assert not inspector.restore(None) and "pick a version" in inspector.status


def test_fork_button_forks_the_picked_version_and_shows_the_fork(
    storage: WorkflowStorage, inspect: Inspect
) -> None:
    seed(storage, 2)
    for version in range(1, 4):
        storage.save("s", {"n": version, "pad": "x" * 5000}, expected_version=version - 1,
                     workflow_name="W")
    inspector = inspect(storage, session_id="s")
    inspector.view.versions.value = 2
    inspector.view.fork_box.value = "s-try"
    inspector.view.fork_button.click()  # the button is the method
    assert inspector.status == ("forked session 's' version 2 as 's-try': now shown (the "
                                "source is unchanged)")
    assert inspector.selected == "s-try" and inspector.sessions[0] == "s-try"
    assert json.loads(inspector.state_text) == {"n": 2, "pad": "x" * 5000}
    assert storage.read("s-try").document == storage.read("s", 2).document  # type: ignore[union-attr]
    assert [v.version for v in storage.history("s")] == [3, 2, 1]
    assert inspector.view.fork_box.value == ""
    (label, version), = inspector.view.versions.options
    assert version == 1 and label.endswith("forked from s v2") and " fork " in label
    assert "s-try" in inspector.view.compare_box.options  # listed for Compare too

    inspector.select("s")  # nothing picked: the loaded version, under a fresh uuid
    assert inspector.fork()
    assert inspector.history[0].forked_from_session == "s"
    assert inspector.history[0].forked_from_version == 3
    assert inspector.selected is not None and len(inspector.selected) == 36


def test_fork_under_a_taken_id_is_refused_and_writes_nothing(
    storage: WorkflowStorage, inspect: Inspect
) -> None:
    seed(storage, 2)
    inspector = inspect(storage, session_id="s0")
    assert not inspector.fork(new_session_id="s1")
    assert inspector.status.startswith("fork failed: cannot fork session 's0' version 1 as "
                                       "'s1': a session 's1' is already in table")
    assert inspector.selected == "s0" and stored(storage, "s1") == {"n": 1, "tags": ["a", "b"]}
    assert [v.source for v in storage.history("s1")] == ["save"]
    assert not inspector.fork(7) and "no version 7" in inspector.status
    assert storage.count_sessions() == 2


def test_fork_with_unsaved_text_asks_before_showing_the_fork(
    storage: WorkflowStorage, inspect: Inspect
) -> None:
    storage.save("s", {"a": 1}, expected_version=0)
    inspector = inspect(storage, session_id="s")
    inspector.state_text = '{"a": "unsaved"}'
    assert inspector.fork(new_session_id="f")
    assert stored(storage, "f") == {"a": 1}  # the stored version, not the editor's text
    assert inspector.selected == "s" and inspector.state_text == '{"a": "unsaved"}'
    assert "forked session 's' version 1 as 'f'; your unsaved text" in inspector.status
    inspector.view.discard_yes.click()
    assert inspector.selected == "f" and json.loads(inspector.state_text) == {"a": 1}


def test_compare_diffs_the_selected_session_with_another_sessions_current_state(
    storage: WorkflowStorage, inspect: Inspect
) -> None:
    storage.save("a", {"x": 1, "y": "same"}, expected_version=0)
    storage.save("a", {"x": 2, "y": "same"}, expected_version=1)
    storage.save("b", {"x": 3, "y": "same"}, expected_version=0)
    inspector = inspect(storage, session_id="a")
    assert inspector.compare("b").splitlines()[:2] == ["--- b version 1 (current)",
                                                      "+++ a version 2"]
    assert '-  "x": 3,' in inspector.compare("b") and '+  "x": 1,' in inspector.compare("b", 1)
    inspector.view.compare_box.value = "b"  # typing an id (Enter) compares
    assert inspector.status == "compared with session 'b': 2 lines differ"
    html = inspector.view.history_diff.value
    assert "session &#x27;b&#x27; (current) → session &#x27;a&#x27; version 2" in html
    assert "&quot;x&quot;: 3" in html
    inspector.view.versions.value = 1  # a picked version is compared
    inspector.view.compare_button.click()
    assert "session &#x27;a&#x27; version 1" in inspector.view.history_diff.value
    storage.fork("a", 2, "a2")
    assert inspector.compare("a2") == ""
    inspector.view.versions.value = None
    inspector.history_actions.show_comparison("a2")
    assert inspector.status == "compared with session 'a2': no difference"
    inspector.view.compare_box.value = "nobody"
    assert inspector.status == "compare failed: no session 'nobody' in table " \
        f"'{storage.table_name}'"
    inspector.view.compare_box.value = ""
    inspector.view.compare_button.click()
    assert inspector.status == "compare failed: enter the id of a session to compare with"


# -- runs ----------------------------------------------------------------------------------


class Greeter(Workflow):
    """Stores whom it greeted; fails on request."""

    def run(self, name: str, fail: bool = False) -> Iterator[RunResponse]:
        self.session_state["greeted"] = name
        yield RunResponse(content=f"Hello {name}", usage=Usage(12, 30))
        if fail:
            raise ValueError(f"cannot greet {name}")


def test_runs_tab_shows_status_timings_output_and_error(
    storage: WorkflowStorage, inspect: Inspect
) -> None:
    list(Greeter(session_id="g", storage=storage).run(name="Ada"))
    with pytest.raises(ValueError, match="cannot greet"):
        list(Greeter(session_id="g", storage=storage).run(name="Bob", fail=True))
    inspector = inspect(storage, session_id="g")
    runs = inspector.view.runs_html.value
    assert runs.index("failed") < runs.index("completed")  # newest first
    assert "cannot greet Bob" in runs and "Hello Ada" in runs and " ms</td>" in runs
    # the input as the run bound it, defaults included (run("Ada") is run("Ada", fail=False))
    assert "{&quot;name&quot;:&quot;Ada&quot;,&quot;fail&quot;:false}" in runs
    assert "<th>tokens</th>" in runs and ">12 in / 30 out</td>" in runs


class Stepped(Workflow):
    """Two steps, the second failing when asked; ``name=XSS`` for the escaping test."""

    @wfnb.step
    def fetch(self, topic: str) -> str:
        return topic.upper()

    @wfnb.step(name=XSS)
    def hostile(self, fail: bool) -> str:
        if fail:
            raise ValueError(XSS)
        return "ok"

    def run(self, fail: bool = False) -> Iterator[str]:
        yield self.fetch("pasta")
        yield self.hostile(fail)
        self.session_state["done"] = True


def test_runs_tab_draws_each_runs_steps_on_a_timeline(
    storage: WorkflowStorage, inspect: Inspect
) -> None:
    with pytest.raises(ValueError, match="img"):
        list(Stepped(session_id="t", storage=storage).run(fail=True))
    list(Stepped(session_id="t", storage=storage).run())
    inspector = inspect(storage, session_id="t")
    runs = inspector.view.runs_html.value
    newest, oldest = (run.run_id[:8] for run in storage.runs("t"))
    assert runs.index(f"run {newest} · completed · 2 steps (1 run, 1 served") < runs.index(
        f"run {oldest} · failed · 2 steps (2 run, 0 served")
    assert runs.count("wfnb-timeline") == 2 and runs.count("position:absolute") == 4
    assert runs.count("repeating-linear-gradient") == 1 + 2  # the served step, two legends
    assert "#cf222e" in runs and "from record" in runs  # the failed step is red
    assert "<img" not in runs and runs.count(ESCAPED) >= 3  # name, tooltip, error


# -- what must not break the panel ---------------------------------------------------------


def test_a_corrupt_row_shows_an_error_for_that_session_only(
    make_storage: StorageFactory, inspect: Inspect
) -> None:
    writer = make_storage()
    writer.save("bad", {"a": 1}, expected_version=0)
    writer.save("good", {"a": 2}, expected_version=0)
    engine = writer.db.engine
    assert engine is not None
    with engine.begin() as conn:
        conn.execute(sa.text(f'UPDATE "{writer.table_name}_versions" SET data = :bad '
                             "WHERE session_id = 'bad'"), {"bad": b'{"a":1'})
    inspector = inspect(make_storage())  # a fresh storage: nothing cached
    assert inspector.sessions == ["good", "bad"]
    assert not inspector.select("bad")
    assert "session 'bad' cannot be read" in inspector.status
    assert "cannot be read" in inspector.view.meta.value
    assert [v.version for v in inspector.history] == [1]  # history still shows
    assert inspector.select("good") and json.loads(inspector.state_text) == {"a": 2}
    inspector.select("bad")
    inspector.state_text = '{"a": 3}'  # a good version can be written over it
    assert inspector.save(), inspector.status
    assert stored(writer, "bad") == {"a": 3}


def test_every_html_string_is_escaped(
    storage: WorkflowStorage, inspect: Inspect, tmp_path: Path
) -> None:
    storage.save(XSS, {XSS: XSS, "nested": [{"k": XSS}]}, expected_version=0,
                 workflow_name=XSS)
    storage.record_run_start("r1", XSS, XSS, {"input": XSS})
    storage.record_run_end("r1", status="failed", output=XSS, error=XSS)
    inspector = inspect(storage)
    found: list[str] = []
    steps: list[Callable[[], object]] = [
        lambda: inspector.search(XSS), lambda: inspector.filter_workflow(XSS),
        lambda: inspector.select(XSS),
        lambda: setattr(inspector, "state_text", json.dumps({"x": XSS})),
        inspector.save, lambda: setattr(inspector.view.versions, "value", 1),
        lambda: inspector.select("missing <script>alert(2)</script>"),
        lambda: inspector.select(XSS), lambda: setattr(inspector, "state_text", XSS),
        inspector.save, lambda: inspector.export(tmp_path / XSS),
        lambda: setattr(inspector.view.compare_box, "value", XSS),
        lambda: setattr(inspector.view.compare_box, "value", XSS + "?"),
        lambda: inspector.fork(None, XSS + "!"), lambda: inspector.fork(None, XSS),
    ]
    for step in steps:
        step()
        found += html_values(inspector)
    assert all("<img" not in value and "<script" not in value for value in found)
    joined = "".join(found)
    assert ESCAPED in joined and "&lt;script&gt;" in joined
    assert ESCAPED in inspector.view.runs_html.value and ESCAPED in inspector.view.meta.value


# -- a notebook: the magic and refreshing after runs ---------------------------------------


def run(shell: InteractiveShell, source: str) -> None:
    result = shell.run_cell(source)  # type: ignore[no-untyped-call]
    assert result.success, result.error_in_exec


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance(display_pub_class=CapturingDisplayPublisher)
    run(ip, "%load_ext wfnb")
    monkeypatch.chdir(tmp_path)
    _frontend.use("jupyterlab")
    run(ip, "%config WorkflowMagics.db_file = 'tmp/workflows.db'")
    ip.display_pub.outputs.clear()  # type: ignore[attr-defined]
    yield ip
    _frontend.use(None)
    for inspector in list(_inspector._live):
        inspector.close()


COUNT = 'session_state["count"] = session_state.get("count", 0) + 1\nyield "counted"\n'


def test_workflow_state_magic_displays_an_inspector(shell: InteractiveShell) -> None:
    run(shell, "%%workflow notes\n" + COUNT)
    run(shell, "%workflow_state --session-id notes --page-size 5")
    shown = [m["data"] for m in shell.display_pub.outputs  # type: ignore[attr-defined]
             if "application/vnd.jupyter.widget-view+json" in m["data"]]
    (inspector,) = _inspector._live
    assert len(shown) == 1 and inspector.widget.model_id in str(shown[0])
    assert inspector.selected == "notes" and inspector.page_size == 5
    assert json.loads(inspector.state_text) == {"count": 1}
    shell.user_ns["mine"] = SqliteWorkflowStorage("mine", "tmp/mine.db")
    run(shell, "%workflow_state --storage mine")
    assert {i.storage.table_name for i in _inspector._live} == {"notebook_workflows", "mine"}


def test_inspector_refreshes_after_a_workflow_run(shell: InteractiveShell) -> None:
    run(shell, "%%workflow notes\n" + COUNT)
    run(shell, "%workflow_state --session-id notes")
    (inspector,) = _inspector._live
    run(shell, "%%workflow notes\n" + COUNT)
    assert json.loads(inspector.state_text) == {"count": 2}
    assert inspector.status == "session 'notes' updated by a run: now version 2"
    assert [r.status for r in inspector.selection.runs] == ["completed", "completed"]
    run(shell, "%%workflow other\n" + COUNT)  # a new session appears in the list
    assert inspector.sessions == ["other", "notes"] and inspector.selected == "notes"
    inspector.state_text = '{"count": 100}'  # an unsaved edit survives a run...
    run(shell, "%%workflow notes\n" + COUNT)
    assert inspector.state_text == '{"count": 100}'
    assert "your unsaved edit of version 2 is kept" in inspector.status
    assert not inspector.save()
    assert "it is now version 3, written by a workflow run" in inspector.status


def test_a_failing_refresh_after_a_run_only_shows_in_the_status(
    storage: WorkflowStorage, inspect: Inspect, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(storage, 2)
    inspector = inspect(storage, session_id="s0")

    def broken(**kwargs: Any) -> int:
        raise RuntimeError("database went away")

    monkeypatch.setattr(storage, "count_sessions", broken)
    _inspector.refresh_live("s0")  # what the magics call after every run: never raises
    assert inspector.status == "refresh after the run failed: database went away"
    with pytest.raises(ValueError, match="page_size must be at least 1"):
        StateInspector(storage, page_size=0)


def test_runs_do_not_import_the_inspector(tmp_path: Path) -> None:
    code = (
        "import sys; from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance(); ip.run_cell('%load_ext wfnb')\n"
        "ip.run_cell('%%workflow w\\nyield \"x\"')\n"
        "print(sorted(m for m in sys.modules if 'ipywidgets' in m or '_inspector' in m))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_state_inspector_is_public_and_lazy() -> None:
    assert wfnb.StateInspector is StateInspector
    assert "StateInspector" in wfnb.__all__


# -- scale ---------------------------------------------------------------------------------


def _bench() -> Any:
    """bench/inspector.py, for its bulk insert (the rows a first save writes)."""
    spec = importlib.util.spec_from_file_location(
        "bench_inspector", Path(__file__).parent.parent / "bench" / "inspector.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_100000_sessions_page_without_reading_states(
    storage: WorkflowStorage, inspect: Inspect, monkeypatch: pytest.MonkeyPatch
) -> None:
    _bench().insert_sessions(storage, 100_000)
    reads: list[str] = []
    read = storage.read

    def counted(session_id: str, version: int | None = None) -> Any:
        reads.append(session_id)
        return read(session_id, version)

    monkeypatch.setattr(storage, "read", counted)
    inspector = inspect(storage)
    assert inspector.sessions == [f"session-{n:06d}" for n in range(99_999, 99_979, -1)]
    # counting stops at COUNT_LIMIT (1,000): the label says so, and Next still goes on past it
    assert _inspector.COUNT_LIMIT == 1000
    assert inspector.view.page_label.value == "page 1 of more than 50 · more than 1,000 sessions"
    assert inspector.pages == 50 and not inspector.view.next.disabled
    inspector.go_to_page(60)
    assert inspector.page == 60 and inspector.sessions[0] == f"session-{99_999 - 59 * 20:06d}"
    assert inspector.view.page_label.value.startswith("page 60 of more than 60 ·")
    inspector.go_to_page(5000)
    assert inspector.sessions[-1] == "session-000000" and inspector.view.next.disabled
    inspector.search("session-0500")
    assert inspector.pages == 5 and inspector.sessions[0] == "session-050099"
    inspector.filter_workflow("Summarizer")
    assert inspector.pages == 1 and len(inspector.sessions) == 20
    assert reads == []  # no state read until one is selected
    assert inspector.select(inspector.sessions[0]) and len(reads) == 1


def test_pages_are_keyset_seeks_and_counting_stops_at_its_limit(
    storage: WorkflowStorage, inspect: Inspect, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(23):
        storage.save(f"s{n:02d}", {}, expected_version=0)
    monkeypatch.setattr(_inspector, "COUNT_LIMIT", 10)
    listed: list[dict[str, Any]] = []
    list_sessions = storage.list_sessions

    def recorded(**kwargs: Any) -> Any:
        listed.append(kwargs)
        return list_sessions(**kwargs)

    monkeypatch.setattr(storage, "list_sessions", recorded)
    inspector = inspect(storage, page_size=5)
    assert inspector.view.page_label.value == "page 1 of more than 2 · more than 10 sessions"
    seen = list(inspector.sessions)
    while not inspector.view.next.disabled:
        assert inspector.next_page()
        seen += inspector.sessions
    assert seen == [f"s{n:02d}" for n in range(22, -1, -1)] and inspector.page == 5
    assert inspector.prev_page() and inspector.sessions == [f"s{n:02d}" for n in range(7, 2, -1)]
    inspector.relist()  # a re-read finds the page the way it was found
    assert inspector.sessions == [f"s{n:02d}" for n in range(7, 2, -1)]
    assert all("offset" not in kwargs for kwargs in listed)
    assert {"after", "before"} <= {key for kwargs in listed for key in kwargs}


def test_a_1_mb_state_is_sent_to_the_browser_once(
    storage: WorkflowStorage, inspect: Inspect
) -> None:
    big = {"posts": [{"topic": f"topic {n}", "text": "word " * 200} for n in range(1000)]}
    storage.save("big", big, expected_version=0)
    inspector = inspect(storage)
    state_bytes = len(json.dumps(big))
    assert state_bytes > 1_000_000

    def sent() -> int:
        """Bytes of every widget's synced state and the tree's output bundle, as JSON."""
        return sum(len(json.dumps(widget.get_state(), default=str))
                   for widget in inspector.view.widgets())

    assert inspector.select("big")
    assert state_bytes < sent() < 1.3 * state_bytes  # the tree only
    assert inspector.view.editor.value == ""  # not sent while the Edit tab is closed
    assert json.loads(inspector.state_text) == big and not inspector.dirty
    inspector.view.tabs.selected_index = 1  # a person opens the Edit tab: now it is sent
    assert json.loads(inspector.view.editor.value) == big
    assert 2 * state_bytes < sent() < 2.6 * state_bytes
    inspector.state_text = inspector.state_text.replace("topic 7", "topic seven", 1)
    assert inspector.dirty and inspector.save()
    assert storage.read("big").session_state["posts"][7]["topic"] == "topic seven"
