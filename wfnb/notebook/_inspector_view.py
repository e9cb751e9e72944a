"""The state inspector's widgets (stock ipywidgets 8), laid out; no storage and no rules here.

:class:`InspectorView` builds the panel and offers what the inspector and its actions do to it:
the status line, the delete button's confirmation state, and changing values from code without
their observers acting (:meth:`InspectorView.sync`). What the panel means is in _inspector.py;
what it writes in _inspector_actions.py; how things look in _inspector_render.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import ipywidgets as widgets  # type: ignore[import-untyped]

from wfnb.notebook import _inspector_render as render
from wfnb.notebook._inspector_display import VISIBILITY_CLASS


class InspectorView:
    """The panel: search and workflow filter, the session list and pager, the status line, and
    the State, Edit, History and Runs tabs. ``widget`` is the root box."""

    def __init__(self, page_size: int) -> None:
        w = widgets
        full = w.Layout(width="100%")
        self.search_box = w.Text(placeholder="search session ids", continuous_update=False,
                                 layout=w.Layout(width="240px"))
        self.workflow_box = w.Dropdown(options=["all workflows"], index=0,
                                       layout=w.Layout(width="220px"))
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.rows = w.Select(options=[], value=None, rows=min(page_size, 25), layout=full)
        self.prev = w.Button(description="Prev", icon="chevron-left")
        self.next = w.Button(description="Next", icon="chevron-right")
        self.page_label = w.Label()
        self.status_html = w.HTML()
        # typed into by the visibility script (_inspector_display.py), never shown
        self.visibility = w.Text(value="visible", continuous_update=True,
                                 layout=w.Layout(display="none"))
        self.visibility.add_class(VISIBILITY_CLASS)
        self.discard_label = w.Label()
        self.discard_yes = w.Button(description="Yes", button_style="danger")
        self.discard_no = w.Button(description="No")
        self.discard_row = w.HBox([self.discard_label, self.discard_yes, self.discard_no],
                                  layout=w.Layout(display="none"))
        self.meta = w.HTML()
        self.tree = w.Output(layout=full)
        self.editor = w.Textarea(layout=w.Layout(width="100%", height="320px"))
        self.save_button = w.Button(description="Save", button_style="primary", icon="save")
        self.revert_button = w.Button(description="Revert", icon="undo")
        self.reload_button = w.Button(description="Refresh", icon="refresh")
        self.delete_button = w.Button(description="Delete", icon="trash")
        self.path_box = w.Text(placeholder="file.json", layout=w.Layout(width="320px"))
        self.export_button = w.Button(description="Export", icon="download")
        self.overwrite_box = w.Checkbox(value=False, description="overwrite", indent=False,
                                        layout=w.Layout(width="100px"))
        self.import_button = w.Button(description="Import", icon="upload")
        self.edit_diff = w.HTML()
        self.versions = w.Select(options=[], value=None, rows=8, layout=full)
        self.restore_button = w.Button(description="Restore", icon="history")
        self.fork_button = w.Button(description="Fork", icon="code-fork",
                                    tooltip="a new session from the picked version (else the "
                                            "loaded one); this one stays as it is")
        self.fork_box = w.Text(placeholder="new session id (default: a fresh uuid)",
                               layout=w.Layout(width="300px"))
        self.compare_box = w.Combobox(placeholder="compare with session…", options=(),
                                      continuous_update=False, layout=w.Layout(width="300px"))
        self.compare_button = w.Button(description="Compare", icon="columns")
        self.history_diff = w.HTML()
        self.runs_html = w.HTML()
        self.tabs = w.Tab(
            children=[
                w.VBox([self.meta, self.tree]),
                w.VBox([self.editor,
                        w.HBox([self.save_button, self.revert_button, self.reload_button,
                                self.delete_button]),
                        w.HBox([self.path_box, self.export_button, self.overwrite_box,
                                self.import_button]),
                        self.edit_diff]),
                w.VBox([self.versions,
                        w.HBox([self.restore_button, self.fork_button, self.fork_box]),
                        w.HBox([self.compare_box, self.compare_button]),
                        self.history_diff]),
                w.VBox([self.runs_html]),
            ],
            titles=("State", "Edit", "History", "Runs"),
        )
        self.widget = w.VBox([
            w.HTML(render.STYLE),
            w.HBox([self.search_box, self.workflow_box, self.refresh_button]),
            w.HTML(f'<div class="wfnb-mono">{render.ROWS_HEADER}</div>'),
            self.rows,
            w.HBox([self.prev, self.next, self.page_label]),
            self.status_html,
            self.discard_row,
            self.tabs,
            self.visibility,
        ])
        self.widget.add_class("wfnb-inspector")
        self.tabs.observe(lambda _change: self._fill_editor(), names="selected_index")
        self._editor_text: str | None = None  # text for the editor, sent when Edit is opened
        self.status = ""  # the status line as plain text
        self.armed: tuple[str, int] | None = None  # a delete (session, version) to confirm
        self.switch_to: str | None = None  # a session to show once unsaved text is discarded
        self._syncing = False  # set while code (not a person) changes widget values

    EDIT_TAB = 1

    @property
    def editor_text(self) -> str:
        """The editor's text, whether or not it has been sent to the browser yet."""
        return self._editor_text if self._editor_text is not None else str(self.editor.value)

    @editor_text.setter
    def editor_text(self, text: str) -> None:
        """Give the editor ``text``; sent to the browser only while the Edit tab is open (a
        1 MB state then travels once, in the State tab's tree, until someone edits it)."""
        self._editor_text = text
        self._fill_editor()

    def _fill_editor(self) -> None:
        if self._editor_text is not None and self.tabs.selected_index == self.EDIT_TAB:
            self.editor.value, self._editor_text = self._editor_text, None

    def on_click(self, button: Any, handle: Callable[[], object]) -> None:
        button.on_click(lambda _button: handle())

    def on_change(self, control: Any, name: str, handle: Callable[[Any], object]) -> None:
        """Call ``handle(new value)`` when a person changes ``control.name`` (not this code)."""

        def observe(change: dict[str, Any]) -> None:
            if not self._syncing:
                handle(change["new"])

        control.observe(observe, names=name)

    @contextlib.contextmanager
    def sync(self) -> Iterator[None]:
        """Change widget values from code without their observers acting on it."""
        before, self._syncing = self._syncing, True
        try:
            yield
        finally:
            self._syncing = before

    def say(self, text: str, kind: str = "info") -> None:
        """Show ``text`` in the status line (kind: info, ok, warn, error)."""
        self.status = text
        self.status_html.value = render.status_html(text, kind)

    def arm_delete(self, session_id: str, version: int) -> None:
        """Turn Delete into Confirm for this session at this version."""
        self.armed = (session_id, version)
        self.delete_button.description, self.delete_button.button_style = "Confirm", "danger"

    def disarm_delete(self) -> None:
        if self.armed is not None:
            self.armed = None
            self.delete_button.description, self.delete_button.button_style = "Delete", ""

    def ask_discard(self, session_id: str) -> None:
        """Show the "Discard changes? Yes / No" row for a switch to ``session_id``."""
        self.switch_to = session_id
        self.discard_label.value = f"Discard your unsaved changes and show {session_id!r}?"
        self.discard_row.layout.display = ""

    def drop_discard(self) -> None:
        """Hide the discard question (answered, or no longer asked)."""
        self.switch_to = None
        self.discard_row.layout.display = "none"

    def widgets(self) -> Iterator[Any]:
        """Every widget of the panel, the root first."""
        stack = [self.widget]
        while stack:
            widget = stack.pop()
            yield widget
            stack.extend(getattr(widget, "children", ()))

    def close(self) -> None:
        for widget in list(self.widgets()):
            widget.close()
