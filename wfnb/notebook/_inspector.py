"""StateInspector: browse, edit, diff and restore stored sessions in a notebook, with stock widgets.

Built from ipywidgets 8 only (no front-end build), so it works wherever widgets do: JupyterLab 4,
Notebook 7, VS Code. It lists sessions a page at a time through ``list_sessions`` and
``count_sessions`` (never every session, never a state it does not show; pages found by keyset
seeks, counts capped at COUNT_LIMIT) and reads the state of the selected session only. Every
button calls the public method of the same name, so what a click does and what a script does
are one code path; errors become the status line, never a traceback in the widget log.

This module keeps the list and the selected session; the widgets are laid out in
_inspector_view.py, what it writes (Save, Restore, Delete, ...) is in _inspector_actions.py,
the History tab's diffs between versions and sessions and its Fork in _inspector_history.py,
what it shows in _inspector_render.py.
"""

from __future__ import annotations

import datetime as dt
import math
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wfnb._errors import CorruptStateError
from wfnb._format import plural, pretty_json
from wfnb.notebook import _inspector_render as render
from wfnb.notebook._inspector_actions import EditActions, Selection, action
from wfnb.notebook._inspector_display import LiveDisplay
from wfnb.notebook._inspector_history import HistoryActions
from wfnb.notebook._inspector_live import Poller, Schedule, kernel_schedule
from wfnb.notebook._inspector_snapshot import snapshot_html
from wfnb.notebook._inspector_view import InspectorView
from wfnb.storage import PageCursor, SessionSummary, VersionInfo, WorkflowStorage

COUNT_LIMIT = 1_000  # sessions counted at most: past it, "more than 1,000 sessions"

_live: weakref.WeakSet[StateInspector] = weakref.WeakSet()


def refresh_live(session_id: str | None = None) -> None:
    """After a ``%workflow`` run: every live inspector re-lists its page and, when the run
    saved the session it shows (``None``: any session), reloads it.

    Never raises: a failure shows in that inspector's status line, and the run's own result
    or error is what the cell reports.
    """
    for inspector in list(_live):
        try:
            inspector._after_run(session_id)
        except Exception as error:  # a display refresh must not fail the cell
            inspector._say(f"refresh after the run failed: {error}", "error")


class StateInspector:
    """A panel over one storage's sessions: a searchable, paged list and, for the selected
    session, its state (a collapsible tree), an editor, its history with diffs, and its runs.

    ``StateInspector(storage, page_size=20, session_id=None)``; display it like any widget
    (``.widget`` is the root box). Scriptable: ``sessions``, ``next_page()``, ``search(text)``,
    ``select(id)``, ``state_text``, ``save()``, ``history``, ``diff(v)``, ``restore(v)``,
    ``fork(v)``, ``compare(other_id)``, ...

    Made of the panel (``view``, _inspector_view.py), the writes (``actions``,
    _inspector_actions.py) and the History tab's diffs and Fork (``history_actions``,
    _inspector_history.py), both seeing this object through the ``Inspected`` interface,
    and, here, the list and the selected session.
    """

    def __init__(
        self, storage: WorkflowStorage, *, page_size: int = 20, session_id: str | None = None,
        live_interval: float | None = None, schedule: Schedule = kernel_schedule,
    ) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, not {page_size}")
        self.storage = storage
        self.page_size = page_size
        self._page, self._total, self._more = 1, 0, False
        self._listed_page = 0  # the page _summaries holds
        self._edges: tuple[int, dict[str, Any]] | None = None  # how that page was found
        self._query = ""
        self._workflow: str | None = None
        self._workflows: list[str | None] = [None]
        self._summaries: list[SessionSummary] = []
        self._selection = Selection()
        self.view = InspectorView(page_size)
        self.widget = self.view.widget
        self.actions = EditActions(storage, self.view, self)
        self.history_actions = HistoryActions(storage, self.view, self)
        self.poller = Poller(storage, lambda: self._after_run(None, by="another writer"),
                             interval=live_interval, schedule=schedule,
                             on_error=lambda error: self._say(
                                 f"live refresh failed: {error}", "error"))
        self.display = LiveDisplay(self.widget, self.snapshot, schedule)
        self._wire()
        _live.add(self)
        self.refresh()
        if session_id is not None:
            self.select(session_id)

    def _wire(self) -> None:
        """Connect every control to the public method it stands for."""
        v = self.view
        clicks: dict[Any, Callable[[], object]] = {
            v.refresh_button: self.refresh, v.reload_button: self.refresh,
            v.prev: self.prev_page, v.next: self.next_page, v.save_button: self.save,
            v.revert_button: self.revert, v.delete_button: self.delete,
            v.export_button: self.export, v.import_button: self.import_,
            v.restore_button: lambda: self.restore(v.versions.value),
            v.fork_button: self.fork, v.compare_button: self.history_actions.show_comparison,
            v.discard_yes: lambda: v.switch_to is not None and self.select(
                v.switch_to, discard=True),
            v.discard_no: self.keep_editing,
        }
        for button, method in clicks.items():
            v.on_click(button, method)
        v.on_change(v.search_box, "value", self.search)
        v.on_change(v.workflow_box, "index", lambda index: self.filter_workflow(
            self._workflows[index] if index is not None else None))
        v.on_change(v.rows, "value", lambda sid: sid is not None and self.select(sid))
        v.on_change(v.versions, "value", self._show_version)
        v.on_change(v.compare_box, "value", lambda text: bool(text.strip()) and (
            self.history_actions.show_comparison(text)))
        v.visibility.observe(lambda change: self.poller.show(change["new"] != "hidden"),
                             names="value")

    def _ipython_display_(self) -> None:
        """Shown in a notebook: the widget, its static snapshot for where widgets cannot render
        (kept current) and the script that says whether it is in sight
        (_inspector_display.py); being shown starts the live checks (_inspector_live.py)."""
        self.poller.start()
        self.display.show()

    def snapshot(self) -> str:
        """The page and the selected state now, as static escaped HTML
        (_inspector_snapshot.py)."""
        return snapshot_html(self._summaries, str(self.view.page_label.value), self._selection,
                             dt.datetime.now(dt.timezone.utc))

    def close(self) -> None:
        """Close the panel's widgets and stop refreshing (after runs and live)."""
        _live.discard(self)
        self.poller.stop()
        self.display.stop()
        self.view.close()

    def _say(self, text: str, kind: str = "info") -> None:
        self.view.say(text, kind)

    # -- the editor and the writes (see _inspector_actions.py) ----------------------------

    @property
    def status(self) -> str:
        """The status line as plain text."""
        return self.view.status

    @property
    def state_text(self) -> str:
        """The editor's text (settable); Save stores it."""
        return self.view.editor_text

    @state_text.setter
    def state_text(self, text: str) -> None:
        self.view.editor_text = text

    @property
    def dirty(self) -> bool:
        """Whether the editor holds changes that are not saved."""
        return self.state_text != self._selection.text

    @property
    def history(self) -> list[VersionInfo]:
        """The selected session's versions, newest first (as of its last load)."""
        return list(self._selection.history)

    def save(self) -> bool:
        """Store the editor's text as the next version (source "edit"), if it is a storable
        JSON object and the session is still at the version the editor was loaded from."""
        return self.actions.save()

    def revert(self) -> bool:
        """Put the loaded version's text back in the editor (nothing is read or written)."""
        return self.actions.revert()

    def restore(self, version: int | None) -> bool:
        """Append a new version equal to ``version`` (history is never rewritten)."""
        return self.actions.restore(version)

    def delete(self, confirm: bool = False) -> bool:
        """Delete the selected session with its history and runs; without ``confirm`` the first
        call only asks (a second call, or click, deletes)."""
        return self.actions.delete(confirm)

    def export(self, path: str | Path | None = None, *, overwrite: bool | None = None) -> bool:
        """Write the loaded version's state to a .json file, atomically; an existing file is
        replaced only with ``overwrite`` (default: the "overwrite" box)."""
        return self.actions.export(path, overwrite=overwrite)

    def import_(self, path: str | Path | None = None) -> bool:
        """Load a .json file (a regular file, at most IMPORT_LIMIT bytes) into the editor,
        checked as Save would check it; Save stores it."""
        return self.actions.import_(path)

    def diff(self, version: int) -> str:
        """A unified diff from ``version`` to the loaded (current) one; "" when equal."""
        return self.history_actions.diff(version)

    def fork(self, version: int | None = None, new_session_id: str | None = None) -> bool:
        """Start a new session from ``version`` of the selected one (default: the version
        picked in History, else the loaded one) under ``new_session_id`` (default: the "new
        session id" box, else a fresh uuid), then list and show it; the source is unchanged."""
        return self.history_actions.fork(version, new_session_id)

    def compare(self, session_id: str, version: int | None = None) -> str:
        """A unified diff from session ``session_id``'s current state to the selected
        session's ``version`` (default: the loaded one); "" when equal. The Compare button
        shows it in the History tab."""
        return self.history_actions.compare(session_id, version)

    # -- the list ------------------------------------------------------------------------

    @property
    def sessions(self) -> list[str]:
        """The ids of the sessions on the current page, as listed."""
        return [summary.session_id for summary in self._summaries]

    @property
    def page(self) -> int:
        """The current page, from 1."""
        return self._page

    @property
    def pages(self) -> int:
        """How many pages the current search and filter give (at least 1); counting stops at
        COUNT_LIMIT sessions (then the pages past it are still reached with next_page)."""
        known = max(1, math.ceil(self._total / self.page_size))
        return max(known, self._page) if self._more else known

    @property
    def selected(self) -> str | None:
        """The id of the selected session, if any."""
        return self._selection.session_id

    @property
    def selection(self) -> Selection:
        """The selected session as loaded (what the actions work on)."""
        return self._selection

    def _list(self) -> None:
        """Count (up to COUNT_LIMIT) and fetch the current page: two queries, no state read.

        A page next to the one shown is a keyset seek from its edge row, the first and last
        pages are seeks from the ends, and a re-read repeats how the page was found: only a
        jump to a page in the middle counts rows past (OFFSET). One row more than the page is
        asked for, to know whether a next page exists past the count's cap.
        """
        query, workflow = self._query or None, self._workflow
        counted = self.storage.count_sessions(search=query, workflow_name=workflow,
                                              limit=COUNT_LIMIT + 1)
        self._total, self._more = min(counted, COUNT_LIMIT), counted > COUNT_LIMIT
        shown, self._page = self._page, min(max(self._page, 1), self.pages)
        seek = self._seek(shown == self._page)
        rows = self.storage.list_sessions(  # none counted: no page to look for (a scan, maybe)
            limit=self.page_size + 1, search=query, workflow_name=workflow, **seek
        ) if counted else []
        if "before" in seek:  # the rows nearest the edge, which is past this page
            self._summaries = rows[-self.page_size:]
            has_next = seek["before"] != PageCursor.end()
        else:
            self._summaries, has_next = rows[:self.page_size], len(rows) > self.page_size
        v = self.view
        with v.sync():
            v.rows.options = [(render.row_label(s), s.session_id) for s in self._summaries]
            v.compare_box.options = tuple(self.sessions)
            v.rows.value = self.selected if self.selected in self.sessions else None
        v.page_label.value = f"page {self._page} of {self._pages_text} · {self._total_text}"
        v.prev.disabled = self._page <= 1
        v.next.disabled = not has_next
        self.display.changed()

    def _seek(self, same_page: bool) -> dict[str, Any]:
        """How to find page ``self._page`` (arguments for list_sessions); remembered, so a
        re-read of the page finds it the same way."""
        page, edges = self._page, self._edges
        if page == 1:
            seek: dict[str, Any] = {}
        elif same_page and edges is not None and edges[0] == page:
            seek = edges[1]  # the page again, as it was found
        elif self._summaries and page == self._listed_page + 1:
            seek = {"after": self._summaries[-1]}
        elif self._summaries and page == self._listed_page - 1:
            seek = {"before": self._summaries[0]}
        elif page == self.pages and not self._more:
            seek = {"before": PageCursor.end()}  # the oldest rows: the last page
        else:
            seek = {"offset": (page - 1) * self.page_size}
        self._edges, self._listed_page = (page, seek), page
        return seek

    @property
    def _pages_text(self) -> str:
        return f"more than {self.pages:,}" if self._more else f"{self.pages:,}"

    @property
    def _total_text(self) -> str:
        return (f"more than {plural(self._total, 'session')}" if self._more
                else plural(self._total, "session"))

    def relist(self) -> None:
        """Read the current page again (after a write)."""
        self._list()

    def _list_workflows(self) -> None:
        self._workflows = [None, *self.storage.workflow_names()]
        if self._workflow not in self._workflows:
            self._workflows.append(self._workflow)
        with self.view.sync():
            self.view.workflow_box.options = ["all workflows", *self._workflows[1:]]
            self.view.workflow_box.index = self._workflows.index(self._workflow)

    @action("go to page")
    def go_to_page(self, page: int) -> bool:
        """Show page ``page`` (clamped to the pages there are)."""
        self._page = page
        self._list()
        self._say(f"page {self._page} of {self._pages_text}")
        return True

    def next_page(self) -> bool:
        """Show the next page, if there is one."""
        return self.go_to_page(self._page + 1)

    def prev_page(self) -> bool:
        """Show the previous page, if there is one."""
        return self.go_to_page(self._page - 1)

    @action("search")
    def search(self, text: str) -> bool:
        """List only sessions whose id contains ``text`` ("" lists all), from page 1."""
        self._query, self._page = text, 1
        with self.view.sync():
            self.view.search_box.value = text
        self._list()
        self._say_matches()
        return True

    @action("filter workflow")
    def filter_workflow(self, name: str | None) -> bool:
        """List only sessions of workflow ``name`` (None: all workflows), from page 1."""
        self._workflow, self._page = name, 1
        self._list_workflows()
        self._list()
        self._say_matches()
        return True

    def _say_matches(self) -> None:
        where = [f"id contains {self._query!r}"] if self._query else []
        where += [f"workflow {self._workflow!r}"] if self._workflow is not None else []
        matching = f" where {' and '.join(where)}" if where else ""
        self._say(self._total_text + matching)

    # -- the selected session ------------------------------------------------------------

    @action("select")
    def select(self, session_id: str, *, discard: bool = False) -> bool:
        """Show ``session_id``: read its state (and only its), history and runs.

        With unsaved text in the editor, switching to another session only asks (the
        "Discard changes?" row; Yes, or ``discard=True``, switches and drops the text).
        """
        current = self.selected
        if session_id != current and self.dirty and not discard:
            self.view.ask_discard(session_id)
            with self.view.sync():
                self.view.rows.value = current if current in self.sessions else None
            self._say(f"session {current!r} has unsaved changes: discard them to show "
                      f"{session_id!r}? (Yes / No below)", "warn")
            return False
        self.view.drop_discard()
        self._selection = Selection(session_id)
        with self.view.sync():
            self.view.rows.value = session_id if session_id in self.sessions else None
        if not self.reload():
            return False
        self._say(f"session {session_id!r}, version {self._selection.base_version}", "ok")
        return True

    def keep_editing(self) -> bool:
        """Answer No to "Discard changes?": stay on the session being edited."""
        self.view.drop_discard()
        self._say(f"still editing session {self.selected!r}; Save or Revert when done")
        return True

    def reload(self) -> bool:
        """(Re)read the selected session into every tab; False (and a status) when it cannot.

        A state that cannot be decoded is reported for this session only: its history and
        runs still show, and Save or Restore can still write a good version over it.
        """
        sid = self.selected
        assert sid is not None
        try:
            stored = self.storage.read(sid)
            problem = None if stored is not None else (
                f"no session {sid!r} in table {self.storage.table_name!r}")
        except CorruptStateError as error:
            stored, problem = None, f"session {sid!r} cannot be read: {error}"
        history = self.storage.history(sid)
        self._selection = Selection(
            sid, stored,
            stored.version if stored is not None else history[0].version if history else None,
            pretty_json(stored.document) if stored else "", history,
            self.storage.runs(sid, limit=50),
        )
        self._selection.steps.update(
            (run.run_id, self.storage.steps(sid, run_id=run.run_id))
            for run in self._selection.runs[:render.STEP_RUNS]
        )
        self.view.edit_diff.value = self.view.history_diff.value = ""
        self.view.editor_text = self._selection.text
        self._show_session(problem)
        if problem is not None:
            self._say(problem, "error")
            return False
        return True

    def _show_session(self, problem: str | None) -> None:
        """Render the State, History and Runs tabs from what ``_load`` read."""
        v, selection = self.view, self._selection
        stored = selection.stored
        if stored is not None:
            v.meta.value = render.metadata_html(stored)
            v.tree.outputs = render.tree_outputs(stored.document, stored.session_id)
        else:
            v.meta.value = (render.note_html(problem, "error") if problem
                            else render.note_html("no session selected"))
            v.tree.outputs = render.error_outputs(problem) if problem else ()
        with v.sync():
            v.versions.options = [(render.version_label(i), i.version) for i in selection.history]
            v.versions.value = None
        v.runs_html.value = (
            render.runs_html(selection.runs) + render.steps_html(selection.runs, selection.steps)
            if selection.history else ""
        )
        self.display.changed()

    def clear_selection(self) -> None:
        """Select nothing (the session is gone)."""
        self._selection = Selection()
        v = self.view
        v.editor_text = v.edit_diff.value = v.history_diff.value = ""
        self._show_session(None)
        with v.sync():
            v.rows.value = None

    @action("refresh")
    def refresh(self) -> bool:
        """Re-read the workflow names, the page and the selected session (editor included)."""
        self._list_workflows()
        self._list()
        if self.selected is None:
            self._say_matches()
            return True
        return self.select(self.selected)

    @action("show version")
    def _show_version(self, version: int | None) -> bool:
        if version is None:
            self.view.history_diff.value = ""
            return True
        self.view.history_diff.value = render.diff_html(
            f"version {version} → version {self._selection.base_version} (current)",
            self.diff(version))
        return True

    # -- after a run ---------------------------------------------------------------------

    def _after_run(self, session_id: str | None, by: str = "a run") -> None:
        """Show what a run (or ``by``) saved: re-list the page, reload the selected session if
        it moved.

        An editor with unsaved changes is left alone (Save will then refuse, with a diff).
        """
        self._list_workflows()
        self._list()
        sid, base = self.selected, self._selection.base_version
        if sid is None or session_id not in (None, sid):
            return
        latest = self.storage.history(sid, limit=1)
        now = latest[0].version if latest else None
        if now == base:
            return
        news = (f"session {sid!r} was deleted by {by}" if now is None
                else f"session {sid!r} was saved by {by} (now version {now})")
        if self.dirty:
            self._say(f"{news}; your unsaved edit of version {base} is kept", "warn")
        elif self.reload():
            self._say(f"session {sid!r} updated by {by}: now version {now}", "ok")
        elif now is None:
            self._say(news, "warn")

