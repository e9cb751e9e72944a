"""StateInspector: browse, edit, diff and restore stored sessions in a notebook, with stock widgets.

Built from ipywidgets 8 only (no front-end build), so it works wherever widgets do: JupyterLab 4,
Notebook 7, VS Code. It lists sessions a page at a time through ``list_sessions`` and
``count_sessions`` (never every session, never a state it does not show) and reads the state of
the selected session only. Every button calls the public method of the same name, so what a
click does and what a script does are one code path; errors become the status line, never a
traceback in the widget log.

This module lays the panel out and keeps the list and the selected session; what it writes
(Save, Restore, Delete, ...) is in _inspector_actions.py, what it shows in _inspector_render.py.
"""

from __future__ import annotations

import contextlib
import math
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import ipywidgets as widgets  # type: ignore[import-untyped]

from wfnb._errors import CorruptStateError
from wfnb.notebook import _inspector_render as render
from wfnb.notebook._inspector_actions import EditActions, action
from wfnb.storage import (
    RunRecord,
    SessionSummary,
    StepRecord,
    StoredSession,
    VersionInfo,
    WorkflowStorage,
)

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


class StateInspector(EditActions):
    """A panel over one storage's sessions: a searchable, paged list and, for the selected
    session, its state (a collapsible tree), an editor, its history with diffs, and its runs.

    ``StateInspector(storage, page_size=20, session_id=None)``; display it like any widget
    (``.widget`` is the root box). Scriptable: ``sessions``, ``next_page()``, ``search(text)``,
    ``select(id)``, ``state_text``, ``save()``, ``history``, ``diff(v)``, ``restore(v)``, ...
    """

    def __init__(
        self, storage: WorkflowStorage, *, page_size: int = 20, session_id: str | None = None
    ) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, not {page_size}")
        self.storage = storage
        self.page_size = page_size
        self._page, self._total = 1, 0
        self._query = ""
        self._workflow: str | None = None
        self._workflows: list[str | None] = [None]
        self._summaries: list[SessionSummary] = []
        self._selected: str | None = None
        self._loaded: StoredSession | None = None  # None: nothing selected, or unreadable
        self._base_version: int | None = None  # the version an edit would replace
        self._loaded_text = ""
        self._history: list[VersionInfo] = []
        self._runs: list[RunRecord] = []
        self._steps: dict[str, list[StepRecord]] = {}  # of the newest runs, by run id
        self._armed: tuple[str, int] | None = None  # delete waiting for its confirmation
        self._syncing = False  # set while code (not a person) changes widget values
        self._status = ""
        self._build()
        _live.add(self)
        self.refresh()
        if session_id is not None:
            self.select(session_id)

    # -- widgets -------------------------------------------------------------------------

    def _build(self) -> None:
        w = widgets
        full = w.Layout(width="100%")
        self._search_box = w.Text(placeholder="search session ids", continuous_update=False,
                                  layout=w.Layout(width="240px"))
        self._workflow_box = w.Dropdown(options=["all workflows"], index=0,
                                        layout=w.Layout(width="220px"))
        self._refresh_button = w.Button(description="Refresh", icon="refresh")
        self._rows = w.Select(options=[], value=None, rows=min(self.page_size, 25), layout=full)
        self._prev = w.Button(description="Prev", icon="chevron-left")
        self._next = w.Button(description="Next", icon="chevron-right")
        self._page_label = w.Label()
        self._status_html = w.HTML()
        self._meta = w.HTML()
        self._tree = w.Output(layout=full)
        self._editor = w.Textarea(layout=w.Layout(width="100%", height="320px"))
        self._save_button = w.Button(description="Save", button_style="primary", icon="save")
        self._revert_button = w.Button(description="Revert", icon="undo")
        self._reload_button = w.Button(description="Refresh", icon="refresh")
        self._delete_button = w.Button(description="Delete", icon="trash")
        self._path_box = w.Text(placeholder="file.json", layout=w.Layout(width="320px"))
        self._export_button = w.Button(description="Export", icon="download")
        self._overwrite_box = w.Checkbox(value=False, description="overwrite", indent=False,
                                         layout=w.Layout(width="100px"))
        self._import_button = w.Button(description="Import", icon="upload")
        self._edit_diff = w.HTML()
        self._versions = w.Select(options=[], value=None, rows=8, layout=full)
        self._restore_button = w.Button(description="Restore", icon="history")
        self._history_diff = w.HTML()
        self._runs_html = w.HTML()
        self._tabs = w.Tab(
            children=[
                w.VBox([self._meta, self._tree]),
                w.VBox([self._editor,
                        w.HBox([self._save_button, self._revert_button, self._reload_button,
                                self._delete_button]),
                        w.HBox([self._path_box, self._export_button, self._overwrite_box,
                                self._import_button]),
                        self._edit_diff]),
                w.VBox([self._versions, self._restore_button, self._history_diff]),
                w.VBox([self._runs_html]),
            ],
            titles=("State", "Edit", "History", "Runs"),
        )
        self.widget = w.VBox([
            w.HTML(render.STYLE),
            w.HBox([self._search_box, self._workflow_box, self._refresh_button]),
            w.HTML(f'<div class="wfnb-mono">{render.ROWS_HEADER}</div>'),
            self._rows,
            w.HBox([self._prev, self._next, self._page_label]),
            self._status_html,
            self._tabs,
        ])
        self.widget.add_class("wfnb-inspector")
        self._wire()

    def _wire(self) -> None:
        """Connect every control to the public method it stands for."""
        clicks: dict[Any, Callable[[], object]] = {
            self._refresh_button: self.refresh, self._reload_button: self.refresh,
            self._prev: self.prev_page, self._next: self.next_page, self._save_button: self.save,
            self._revert_button: self.revert, self._delete_button: self.delete,
            self._export_button: self.export, self._import_button: self.import_,
            self._restore_button: lambda: self.restore(self._versions.value),
        }
        for button, method in clicks.items():
            button.on_click(lambda _button, method=method: method())
        changes: list[tuple[Any, str, Callable[[Any], object]]] = [
            (self._search_box, "value", self.search),
            (self._workflow_box, "index", lambda index: self.filter_workflow(
                self._workflows[index] if index is not None else None)),
            (self._rows, "value", lambda sid: sid is not None and self.select(sid)),
            (self._versions, "value", self._show_version),
        ]
        for control, name, handle in changes:
            control.observe(self._by_person(handle), names=name)

    def _by_person(self, handle: Callable[[Any], object]) -> Callable[[dict[str, Any]], None]:
        """An observer calling ``handle(new value)``, except for changes made by this code."""

        def observe(change: dict[str, Any]) -> None:
            if not self._syncing:
                handle(change["new"])

        return observe

    @contextlib.contextmanager
    def _sync(self) -> Iterator[None]:
        """Change widget values from code without their observers acting on it."""
        before, self._syncing = self._syncing, True
        try:
            yield
        finally:
            self._syncing = before

    def _widgets(self) -> Iterator[Any]:
        """Every widget of the panel, the root first."""
        stack = [self.widget]
        while stack:
            widget = stack.pop()
            yield widget
            stack.extend(getattr(widget, "children", ()))

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def close(self) -> None:
        """Close the panel's widgets and stop refreshing after runs."""
        _live.discard(self)
        for widget in list(self._widgets()):
            widget.close()

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
        """How many pages the current search and filter give (at least 1)."""
        return max(1, math.ceil(self._total / self.page_size))

    @property
    def selected(self) -> str | None:
        """The id of the selected session, if any."""
        return self._selected

    def _list(self) -> None:
        """Count and fetch the current page: two queries, no state read."""
        query, workflow = self._query or None, self._workflow
        self._total = self.storage.count_sessions(search=query, workflow_name=workflow)
        self._page = min(max(self._page, 1), self.pages)
        self._summaries = self.storage.list_sessions(
            limit=self.page_size, offset=(self._page - 1) * self.page_size,
            search=query, workflow_name=workflow,
        )
        with self._sync():
            self._rows.options = [(render.row_label(s), s.session_id) for s in self._summaries]
            self._rows.value = self._selected if self._selected in self.sessions else None
        self._page_label.value = (
            f"page {self._page} of {self.pages} · {self._total:,} "
            f"session{'' if self._total == 1 else 's'}"
        )
        self._prev.disabled = self._page <= 1
        self._next.disabled = self._page >= self.pages

    def _list_workflows(self) -> None:
        self._workflows = [None, *self.storage.workflow_names()]
        if self._workflow not in self._workflows:
            self._workflows.append(self._workflow)
        with self._sync():
            self._workflow_box.options = ["all workflows", *self._workflows[1:]]
            self._workflow_box.index = self._workflows.index(self._workflow)

    @action
    def go_to_page(self, page: int) -> bool:
        """Show page ``page`` (clamped to the pages there are)."""
        self._page = page
        self._list()
        self._say(f"page {self._page} of {self.pages}")
        return True

    def next_page(self) -> bool:
        """Show the next page, if there is one."""
        return self.go_to_page(self._page + 1)

    def prev_page(self) -> bool:
        """Show the previous page, if there is one."""
        return self.go_to_page(self._page - 1)

    @action
    def search(self, text: str) -> bool:
        """List only sessions whose id contains ``text`` ("" lists all), from page 1."""
        self._query, self._page = text, 1
        with self._sync():
            self._search_box.value = text
        self._list()
        self._say_matches()
        return True

    @action
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
        noun = "session" if self._total == 1 else "sessions"
        self._say(f"{self._total:,} {noun}" + (f" where {' and '.join(where)}" if where else ""))

    # -- the selected session ------------------------------------------------------------

    @action
    def select(self, session_id: str) -> bool:
        """Show ``session_id``: read its state (and only its), history and runs."""
        self._selected = session_id
        with self._sync():
            self._rows.value = session_id if session_id in self.sessions else None
        if not self._load():
            return False
        assert self._base_version is not None
        self._say(f"session {session_id!r}, version {self._base_version}", "ok")
        return True

    def _load(self) -> bool:
        """(Re)read the selected session into every tab; False (and a status) when it cannot.

        A state that cannot be decoded is reported for this session only: its history and
        runs still show, and Save or Restore can still write a good version over it.
        """
        sid = self._selected
        assert sid is not None
        try:
            self._loaded = self.storage.read(sid)
            problem = None if self._loaded is not None else (
                f"no session {sid!r} in table {self.storage.table_name!r}")
        except CorruptStateError as error:
            self._loaded, problem = None, f"session {sid!r} cannot be read: {error}"
        self._history = self.storage.history(sid)
        self._runs = self.storage.runs(sid, limit=50)
        self._steps = {run.run_id: self.storage.steps(sid, run_id=run.run_id)
                       for run in self._runs[:render.STEP_RUNS]}
        self._base_version = (self._loaded.version if self._loaded is not None
                              else self._history[0].version if self._history else None)
        self._edit_diff.value = self._history_diff.value = ""
        self._loaded_text = render.pretty(self._loaded.document) if self._loaded else ""
        self._editor.value = self._loaded_text
        self._show_session(problem)
        if problem is not None:
            self._say(problem, "error")
            return False
        return True

    def _show_session(self, problem: str | None) -> None:
        """Render the State, History and Runs tabs from what ``_load`` read."""
        stored = self._loaded
        if stored is not None:
            self._meta.value = render.metadata_html(stored)
            self._tree.outputs = render.tree_outputs(stored.document, stored.session_id)
        else:
            self._meta.value = (render.note_html(problem, "error") if problem
                                else render.note_html("no session selected"))
            self._tree.outputs = render.error_outputs(problem) if problem else ()
        with self._sync():
            self._versions.options = [(render.version_label(v), v.version) for v in self._history]
            self._versions.value = None
        self._runs_html.value = (
            render.runs_html(self._runs) + render.steps_html(self._runs, self._steps)
            if self._history else ""
        )

    def _clear_selection(self) -> None:
        self._selected, self._loaded, self._base_version = None, None, None
        self._history, self._runs, self._loaded_text = [], [], ""
        self._steps = {}
        self._editor.value = self._edit_diff.value = self._history_diff.value = ""
        self._show_session(None)
        with self._sync():
            self._rows.value = None

    @action
    def refresh(self) -> bool:
        """Re-read the workflow names, the page and the selected session (editor included)."""
        self._list_workflows()
        self._list()
        if self._selected is None:
            self._say_matches()
            return True
        return self.select(self._selected)

    @action
    def _show_version(self, version: int | None) -> bool:
        if version is None:
            self._history_diff.value = ""
            return True
        self._history_diff.value = render.diff_html(
            f"version {version} → version {self._base_version} (current)", self.diff(version))
        return True

    # -- after a run ---------------------------------------------------------------------

    def _after_run(self, session_id: str | None) -> None:
        """Show what a run saved: re-list the page, reload the selected session if it moved.

        An editor with unsaved changes is left alone (Save will then refuse, with a diff).
        """
        self._list_workflows()
        self._list()
        sid = self._selected
        if sid is None or session_id not in (None, sid):
            return
        latest = self.storage.history(sid, limit=1)
        now = latest[0].version if latest else None
        if now == self._base_version:
            return
        if self.dirty:
            self._say(f"session {sid!r} was saved by a run (now version {now}); your "
                      f"unsaved edit of version {self._base_version} is kept", "warn")
        elif self._load():
            self._say(f"session {sid!r} updated by a run: now version {now}", "ok")

