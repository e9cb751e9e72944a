"""The live inspector: it notices writes from elsewhere with one cheap query per tick, keeps
unsaved text, asks before switching away from it, and carries a static snapshot.

The timer is injected (a list of pending callbacks the test fires), so no kernel is needed; the
"other writer" is a second WorkflowStorage on the same table (or a `wfnb` CLI process).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.interactiveshell import InteractiveShell
from IPython.display import display

from tests.conftest import StorageFactory
from wfnb import SqliteWorkflowStorage, WorkflowStorage
from wfnb.notebook import _inspector
from wfnb.notebook._inspector import StateInspector
from wfnb.notebook._inspector_live import INTERVAL
from wfnb.storage import ChangeMark


class Timer:
    """An injected schedule: callbacks wait here until ``fire()``; delays are recorded."""

    def __init__(self) -> None:
        self.pending: list[Callable[[], object]] = []
        self.delays: list[float] = []

    def __call__(self, delay: float, callback: Callable[[], object]) -> Callable[[], None]:
        self.pending.append(callback)
        self.delays.append(delay)
        return lambda: self.pending.remove(callback) if callback in self.pending else None

    def fire(self) -> None:
        due, self.pending = self.pending, []
        for callback in due:
            callback()

    def checks(self, inspector: StateInspector) -> int:
        """How many of the pending callbacks are the inspector's checks for writes."""
        return sum(1 for callback in self.pending if callback == inspector.poller.check)


@pytest.fixture
def timer() -> Timer:
    return Timer()


@pytest.fixture
def outputs() -> Iterator[list[dict[str, Any]]]:
    """What the shell publishes (display data, and updates of it by display id)."""
    shell = InteractiveShell.instance(display_pub_class=CapturingDisplayPublisher)
    published: list[dict[str, Any]] = shell.display_pub.outputs  # type: ignore[attr-defined]
    published.clear()
    yield published
    published.clear()


@pytest.fixture
def shown(
    timer: Timer, outputs: list[dict[str, Any]]
) -> Iterator[Callable[..., StateInspector]]:
    """Make inspectors as a notebook shows them (``display(inspector)``); closed after."""
    made: list[StateInspector] = []

    def make(storage: WorkflowStorage, **kwargs: Any) -> StateInspector:
        inspector = StateInspector(storage, schedule=timer, **kwargs)
        display(inspector)  # type: ignore[no-untyped-call]
        made.append(inspector)
        return inspector

    yield make
    for inspector in made:
        inspector.close()


# -- the storage's change mark -----------------------------------------------------------------


def test_last_change_moves_on_save_restore_delete_and_import(
    make_storage: StorageFactory, tmp_path: Path
) -> None:
    storage = make_storage()
    empty = storage.last_change()
    assert empty == ChangeMark(None, None, None)
    storage.save("a", {"n": 1}, expected_version=0)
    first = storage.last_change()
    assert first.last_update is not None
    assert storage.last_change() == first  # reading changes nothing
    storage.read("a")
    storage.list_sessions()
    assert storage.last_change() == first
    storage.save("a", {"n": 2}, expected_version=1)
    second = storage.last_change()
    assert second != first
    storage.restore("a", 1, expected_version=2)
    third = storage.last_change()
    assert third != second
    storage.save("b", {"n": 1}, expected_version=0)
    before_delete = storage.last_change()
    storage.delete("b")
    deleted = storage.last_change()
    assert deleted != before_delete and deleted.last_delete is not None
    # an import keeps the sessions' own (older) times: it moves the mark all the same
    storage.save("old", {"n": 1}, expected_version=0)
    storage.export_sessions(tmp_path / "old.jsonl", ["old"])
    storage.delete("old")
    storage.save("newest", {"n": 1}, expected_version=0)
    newest = storage.last_change()
    assert storage.import_sessions(tmp_path / "old.jsonl").imported == ["old"]
    imported = storage.last_change()
    assert imported != newest and imported.last_update == newest.last_update


def test_last_change_is_one_query_without_states(make_storage: StorageFactory) -> None:
    storage = make_storage()
    storage.save("big", {"blob": "x" * 100_000}, expected_version=0)
    storage.save("gone", {}, expected_version=0)
    storage.delete("gone")
    statements: list[str] = []
    engine = storage.db.engine
    sa.event.listen(engine, "before_cursor_execute",
                    lambda *args: statements.append(str(args[2])))
    storage.last_change()
    queries = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(queries) == 1
    assert "data" not in queries[0].lower().replace("updated_at", "")
    assert "count(" not in queries[0].lower()  # a count is a scan of every session


# -- live refresh --------------------------------------------------------------------------


def test_a_write_elsewhere_shows_on_the_next_tick(
    make_storage: StorageFactory, shown: Callable[..., StateInspector], timer: Timer
) -> None:
    storage, other = make_storage(), make_storage()
    storage.save("a", {"n": 1}, expected_version=0)
    inspector = shown(storage, session_id="a", live_interval=2.0)
    assert timer.delays == [2.0] and timer.checks(inspector) == 1
    timer.fire()  # nothing changed: nothing re-read
    assert inspector.sessions == ["a"] and "version 1" in inspector.status
    other.save("b", {"n": 1}, expected_version=0)
    other.save("a", {"n": 2}, expected_version=1)
    timer.fire()
    assert inspector.sessions == ["a", "b"]
    assert '"n": 2' in inspector.state_text
    assert inspector.status == "session 'a' updated by another writer: now version 2"
    assert timer.checks(inspector) == 1  # it keeps checking


def test_unsaved_text_is_kept_and_save_refuses(
    make_storage: StorageFactory, shown: Callable[..., StateInspector], timer: Timer
) -> None:
    storage, other = make_storage(), make_storage()
    storage.save("a", {"n": 1}, expected_version=0)
    inspector = shown(storage, session_id="a")
    inspector.state_text = '{"n": 100}'
    other.save("a", {"n": 2}, expected_version=1)
    timer.fire()
    assert inspector.state_text == '{"n": 100}'
    assert inspector.status == ("session 'a' was saved by another writer (now version 2); "
                                "your unsaved edit of version 1 is kept")
    assert not inspector.save()
    assert "refused" in inspector.status
    stored = storage.read("a")
    assert stored is not None and stored.session_state == {"n": 2}


def test_a_delete_elsewhere_is_reported(
    make_storage: StorageFactory, shown: Callable[..., StateInspector], timer: Timer
) -> None:
    storage, other = make_storage(), make_storage()
    storage.save("a", {"n": 1}, expected_version=0)
    inspector = shown(storage, session_id="a")
    other.delete("a")
    timer.fire()
    assert inspector.sessions == []
    assert inspector.status == "session 'a' was deleted by another writer"


def test_no_checks_until_shown_none_after_close_and_interval_zero_is_off(
    make_storage: StorageFactory, timer: Timer, outputs: list[dict[str, Any]]
) -> None:
    storage = make_storage()
    inspector = StateInspector(storage, schedule=timer)
    assert timer.pending == []  # not shown yet
    display(inspector)  # type: ignore[no-untyped-call]
    display(inspector)  # type: ignore[no-untyped-call]  # shown twice: still one timer
    assert timer.checks(inspector) == 1
    inspector.close()
    assert timer.pending == []
    off = StateInspector(storage, schedule=timer, live_interval=0)
    display(off)  # type: ignore[no-untyped-call]
    assert timer.pending == []
    off.close()
    with pytest.raises(ValueError, match="live interval"):
        StateInspector(storage, schedule=timer, live_interval=-1)


def test_a_hidden_panel_stops_checking_and_checks_at_once_when_shown_again(
    make_storage: StorageFactory, shown: Callable[..., StateInspector], timer: Timer
) -> None:
    storage, other = make_storage(), make_storage()
    storage.save("a", {"n": 1}, expected_version=0)
    inspector = shown(storage, session_id="a", live_interval=2.0)
    timer.fire()
    assert inspector.poller.checks == 1
    inspector.view.visibility.value = "hidden"  # as the browser's script types it
    assert timer.checks(inspector) == 0 and inspector.poller.running
    other.save("a", {"n": 2}, expected_version=1)
    for _ in range(3):
        timer.fire()
    assert inspector.poller.checks == 1 and '"n": 1' in inspector.state_text
    inspector.view.visibility.value = "visible"
    assert timer.checks(inspector) == 1 and timer.delays[-1] == 0  # at once
    timer.fire()
    assert inspector.poller.checks == 2 and '"n": 2' in inspector.state_text
    assert timer.checks(inspector) == 1 and timer.delays[-1] == 2.0  # and on, every 2 s


def test_a_failing_check_is_reported_and_retried(
    make_storage: StorageFactory, shown: Callable[..., StateInspector], timer: Timer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    storage = make_storage()
    inspector = shown(storage)

    def broken() -> ChangeMark:
        raise OSError("database is away")

    monkeypatch.setattr(storage, "last_change", broken)
    timer.fire()
    assert inspector.status == "live refresh failed: database is away"
    assert timer.checks(inspector) == 1


# -- switching away from unsaved text ------------------------------------------------------


def test_switching_with_unsaved_text_asks_first(
    make_storage: StorageFactory, shown: Callable[..., StateInspector]
) -> None:
    storage = make_storage()
    for name in ("a", "b"):
        storage.save(name, {"name": name}, expected_version=0)
    inspector = shown(storage, session_id="a")
    view = inspector.view
    assert view.discard_row.layout.display == "none"
    inspector.state_text = '{"name": "mine"}'
    view.rows.value = "b"  # a person clicks another session
    assert inspector.selected == "a" and inspector.state_text == '{"name": "mine"}'
    assert view.rows.value == "a"
    assert view.discard_row.layout.display == ""
    assert view.discard_label.value == "Discard your unsaved changes and show 'b'?"
    assert "unsaved changes" in inspector.status
    view.discard_no.click()
    assert view.discard_row.layout.display == "none"
    assert inspector.selected == "a" and inspector.state_text == '{"name": "mine"}'
    view.rows.value = "b"
    view.discard_yes.click()
    assert inspector.selected == "b" and '"b"' in inspector.state_text
    assert view.discard_row.layout.display == "none"
    inspector.state_text = "{}"
    assert not inspector.select("a")  # a script is asked the same way
    assert inspector.select("a", discard=True) and inspector.selected == "a"
    inspector.state_text = "{}"
    assert inspector.refresh() and inspector.state_text != "{}"  # Refresh reloads, as before


# -- the static snapshot -------------------------------------------------------------------

XSS = "<img src=x onerror=alert(1)>"


def test_the_display_carries_an_escaped_snapshot_that_follows_the_panel(
    make_storage: StorageFactory, shown: Callable[..., StateInspector], timer: Timer,
    outputs: list[dict[str, Any]],
) -> None:
    storage = make_storage()
    storage.save(XSS, {"note": XSS, "big": "y" * 30_000}, expected_version=0,
                 workflow_name="<b>wf</b>")
    storage.save("plain", {"n": 1}, expected_version=0)
    inspector = shown(storage, session_id=XSS)
    widget, snapshot, script = outputs
    assert "application/vnd.jupyter.widget-view+json" in widget["data"]
    assert list(snapshot["data"]) == ["text/html"] and list(script["data"]) == [
        "application/javascript"]
    display_id = snapshot["transient"]["display_id"]
    html = snapshot["data"]["text/html"]
    assert "<img" not in html and "<b>wf" not in html and "<script" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "&lt;b&gt;wf" in html
    assert "plain" in html and "page 1 of 1 · 2 sessions" in html
    assert "a snapshot taken" in html and "more characters not in the snapshot" in html
    assert len(html) < 25_000
    assert inspector.display.panel_class in script["data"]["application/javascript"]
    # the page and the selection change: the snapshot output is updated, once per THROTTLE
    inspector.select("plain")
    inspector.search("pla")
    timer.fire()
    (update,) = outputs[3:]
    assert update["update"] and update["transient"]["display_id"] == display_id
    assert "&quot;n&quot;: 1" in update["data"]["text/html"]
    assert "page 1 of 1 · 1 session" in update["data"]["text/html"]
    assert XSS not in update["data"]["text/html"]
    timer.fire()  # nothing changed since: nothing published
    assert len(outputs) == 4


def test_the_interval_is_a_magics_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shell = InteractiveShell.instance(display_pub_class=CapturingDisplayPublisher)
    monkeypatch.chdir(tmp_path)
    for cell in ("%load_ext wfnb", "%workflow_state"):
        assert shell.run_cell(cell).success  # type: ignore[no-untyped-call]
    (default,) = _inspector._live
    assert default.poller.interval == INTERVAL == 2.0
    default.close()
    assert shell.run_cell(  # type: ignore[no-untyped-call]
        "%config WorkflowMagics.live_interval = 0.5\n%workflow_state").success
    (tuned,) = _inspector._live
    assert tuned.poller.interval == 0.5
    tuned.close()


def test_a_re_run_state_cell_leaves_one_panel_polling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Running `%workflow_state` again stops the older panel's checks (it stays usable)."""
    shell = InteractiveShell.instance(display_pub_class=CapturingDisplayPublisher)
    monkeypatch.chdir(tmp_path)
    for _ in range(3):
        assert shell.run_cell("%load_ext wfnb\n%workflow_state").success  # type: ignore[no-untyped-call]
    panels = list(_inspector._live)
    assert len(panels) == 3
    assert sorted(panel.poller.running for panel in panels) == [False, False, True]
    for panel in panels:
        panel.close()


# -- in a real kernel ------------------------------------------------------------------------


@pytest.mark.kernel
def test_a_real_kernel_notices_a_write_from_this_process_while_idle(tmp_path: Path) -> None:
    """The default schedule (the kernel's event loop) ticks between cells, with no click."""
    from jupyter_client.manager import start_new_kernel

    db = tmp_path / "live.db"
    writer = SqliteWorkflowStorage("live", db)
    writer.save("first", {"n": 1}, expected_version=0)
    manager, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    printed: list[str] = []

    def keep(message: dict[str, Any]) -> None:
        if message["msg_type"] == "stream":
            printed.append(message["content"]["text"])

    def run(code: str) -> None:
        reply = client.execute_interactive(code, timeout=60, output_hook=keep)
        assert reply["content"]["status"] == "ok", reply["content"]

    try:
        run("from IPython.display import display\nfrom wfnb import SqliteWorkflowStorage\n"
            "from wfnb.notebook._inspector import StateInspector\n"
            f"inspector = StateInspector(SqliteWorkflowStorage('live', {str(db)!r}), "
            "session_id='first', live_interval=0.2)\ndisplay(inspector)")
        writer.save("second", {"n": 2}, expected_version=0)
        writer.save("first", {"n": 10}, expected_version=1)
        expected = ("['first', 'second'] {  \"n\": 10} session 'first' updated by another "
                    "writer: now version 2")
        for _ in range(20):  # the kernel is idle between these cells: its loop runs the checks
            time.sleep(0.5)
            run("print(inspector.sessions, inspector.state_text.replace(chr(10), ''), "
                "inspector.status)")
            if expected in "".join(printed):
                break
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
        writer.close()
    assert expected in "".join(printed)
