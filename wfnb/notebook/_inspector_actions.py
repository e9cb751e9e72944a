"""What the state inspector writes: Save, Restore, Delete, Revert, Export and Import (Fork, a
write to a new session, is with the History tab's actions in _inspector_history.py).

Nothing here overwrites or merges silently. Save and Restore first check that the session is
still at the version the editor was loaded from and refuse, with a diff, when it is not (a plain
compare-and-swap save would merge another writer's changes to other keys); the write itself is
still a compare-and-swap on that version, so a writer slipping in between is caught too, and a
merge the storage made then is reported, not hidden. Delete asks first. Export replaces a file
only when "overwrite" is ticked, and writes it whole or not at all; Import reads only a regular
file of at most IMPORT_LIMIT bytes (a FIFO or a device would hang the kernel).

:class:`EditActions` works on the panel (:class:`~wfnb.notebook._inspector_view.InspectorView`)
and on the inspector through the :class:`Inspected` interface: the selected session as it was
loaded, and the two ways to show what a write changed (reload it, re-list the page).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from wfnb._errors import SessionConflictError, WfnbError
from wfnb._files import FileRefused, atomic_write, read_regular_file
from wfnb._format import when
from wfnb.notebook import _inspector_render as render
from wfnb.notebook._inspector_view import InspectorView
from wfnb.storage import (
    RunRecord,
    SaveResult,
    StepRecord,
    StoredSession,
    VersionInfo,
    WorkflowStorage,
)

_P = ParamSpec("_P")
_WRITERS = {"run": "a workflow run", "save": "a save", "edit": "an edit",
            "restore": "a restore", "import": "an import"}  # what wrote a version
IMPORT_LIMIT = 64 * 1024 * 1024  # bytes: a state file bigger than this is refused, not read


class NeedsInput(WfnbError):
    """An action that needs something (a session, a version, a path) that is not there yet."""


class _OnPanel(Protocol):
    view: InspectorView


_Self = TypeVar("_Self", bound=_OnPanel)
_Method = Callable[Concatenate[_Self, _P], bool]


def action(
    label: str, *, disarms: bool = True
) -> Callable[[_Method[_Self, _P]], _Method[_Self, _P]]:
    """Run an inspector action; a storage or file error becomes the status line
    ("``label`` failed: ..."), and the action returns False. An action that ``disarms``
    (all but Delete itself) cancels a pending delete confirmation."""

    def decorate(method: _Method[_Self, _P]) -> _Method[_Self, _P]:
        def run(self: _Self, /, *args: _P.args, **kwargs: _P.kwargs) -> bool:
            if disarms:
                self.view.disarm_delete()
            try:
                return method(self, *args, **kwargs)
            except (WfnbError, OSError) as error:
                self.view.say(f"{label} failed: {error}", "error")
                return False

        functools.update_wrapper(run, method)
        return run

    return decorate


@dataclass
class Selection:
    """The selected session as last loaded: what an edit is based on."""

    session_id: str | None = None
    stored: StoredSession | None = None  # None: nothing selected, or unreadable
    base_version: int | None = None  # the version an edit would replace
    text: str = ""  # the stored state as the editor was given it
    history: list[VersionInfo] = field(default_factory=list)
    runs: list[RunRecord] = field(default_factory=list)
    steps: dict[str, list[StepRecord]] = field(default_factory=dict)  # of the newest runs


class Inspected(Protocol):
    """What the actions need of the inspector."""

    @property
    def selection(self) -> Selection:
        """The selected session as loaded."""

    def reload(self) -> bool:
        """Read the selected session again into every tab; False when it cannot be read."""

    def relist(self) -> None:
        """Read the current page of the list again."""

    def clear_selection(self) -> None:
        """Select nothing (the session is gone)."""

    def select(self, session_id: str, *, discard: bool = False) -> bool:
        """Show ``session_id``; with unsaved text in the editor, only ask (False)."""


class PanelActions:
    """Actions on ``storage`` for the session ``inspected`` has selected, shown on ``view``."""

    def __init__(
        self, storage: WorkflowStorage, view: InspectorView, inspected: Inspected
    ) -> None:
        self.storage = storage
        self.view = view
        self.inspected = inspected

    @property
    def _selection(self) -> Selection:
        return self.inspected.selection


class EditActions(PanelActions):
    """The inspector's writes, for the session it has selected."""

    def _need_base(self) -> tuple[str, int]:
        """The selected session and the version an edit would replace (as loaded)."""
        selection = self._selection
        if selection.session_id is None or selection.base_version is None:
            raise NeedsInput("select a session first")
        return selection.session_id, selection.base_version

    # -- writing -------------------------------------------------------------------------

    @action("save")
    def save(self) -> bool:
        """Store the editor's text as the next version (source "edit"), if it is a storable
        JSON object and the session is still at the version the editor was loaded from."""
        sid, base = self._need_base()
        try:
            encoded = render.parse_state(self.view.editor_text)
        except render.EditRefused as refused:
            self.view.say(f"not saved: {refused}", "error")
            return False
        return self._write("save", base, lambda: self.storage.save(
            sid, encoded, expected_version=base, source="edit"))

    @action("restore")
    def restore(self, version: int | None) -> bool:
        """Append a new version equal to ``version`` (history is never rewritten)."""
        sid, base = self._need_base()
        if version is None:
            self.view.say("pick a version in the History tab first", "error")
            return False
        return self._write(f"restore version {version}", base, lambda: self.storage.restore(
            sid, version, expected_version=base))

    def _write(self, what: str, base: int, write: Callable[[], SaveResult]) -> bool:
        """Run ``write`` if the session is still at ``base``; report what happened honestly.

        The check comes first because a compare-and-swap save would merge another writer's
        changes to other keys; the swap itself still catches a writer slipping in between.
        """
        sid, _ = self._need_base()
        latest = self.storage.history(sid, limit=1)
        if not latest or latest[0].version != base:
            self._refuse(what, base, latest[0] if latest else None)
            return False
        try:
            result = write()
        except SessionConflictError:
            latest = self.storage.history(sid, limit=1)
            self._refuse(what, base, latest[0] if latest else None)
            return False
        if not result.written:
            self.view.say(f"{what}: no change from version {base}; nothing was written")
            return True
        self.inspected.reload()
        self.inspected.relist()
        if result.merged_keys:
            keys = ", ".join(repr(key) for key in result.merged_keys)
            self.view.say(
                f"{what}: stored as version {result.version}, but another writer saved in "
                f"between and the storage merged their change to {keys} into yours; the "
                "editor now shows the merged state as stored",
                "warn",
            )
        else:
            self.view.say(f"{what}: stored as version {result.version}", "ok")
        return True

    def _refuse(self, what: str, base: int, latest: VersionInfo | None) -> None:
        """Say why ``what`` was not done and show what you loaded against what is stored now."""
        sid, _ = self._need_base()
        loaded = self._selection.stored
        if latest is None:
            self.view.say(f"{what} refused: session {sid!r} was deleted since you loaded version "
                      f"{base}; nothing was written", "error")
            return
        by = _WRITERS.get(latest.source, latest.source)
        by += f" (run {latest.run_id})" if latest.run_id else ""
        self.view.say(
            f"{what} refused: session {sid!r} changed since you loaded version {base}: it is "
            f"now version {latest.version}, written by {by} at {when(latest.created_at)}. "
            "Nothing was written; your text stays in the editor. The diff shows what changed; "
            "Refresh loads the stored version (copy your text first).",
            "error",
        )
        try:
            current = self.storage.read(sid)
            if loaded is None or current is None:
                raise NeedsInput("the loaded or the stored state cannot be read")
            diff = render.unified_diff(
                loaded.document, current.document, f"{sid} version {base} (loaded)",
                f"{sid} version {current.version} (stored now)",
            )
        except WfnbError as error:
            diff = f"(no diff: {error})"
        self.view.edit_diff.value = render.diff_html(
            f"what you loaded (version {base}) → what is stored now (version {latest.version})",
            diff)

    @action("revert")
    def revert(self) -> bool:
        """Put the loaded version's text back in the editor (nothing is read or written)."""
        _, base = self._need_base()
        self.view.editor_text = self._selection.text
        self.view.edit_diff.value = ""
        self.view.say(f"editor reverted to version {base}")
        return True

    @action("delete", disarms=False)
    def delete(self, confirm: bool = False) -> bool:
        """Delete the selected session with its history and runs.

        Without ``confirm`` the first call only asks (a second call, or click, deletes); the
        delete is refused if the session changed since it was loaded.
        """
        sid, base = self._need_base()
        if not confirm and self.view.armed != (sid, base):
            self.view.arm_delete(sid, base)
            self.view.say(f"delete session {sid!r} (version {base}) with its history and runs? "
                      "Click Delete again to confirm; anything else cancels.", "warn")
            return False
        self.view.disarm_delete()
        try:
            self.storage.delete(sid, expected_version=base)
        except SessionConflictError as conflict:
            self.view.say(f"delete refused: session {sid!r} changed since you loaded version "
                          f"{base} (it is now version {conflict.stored_version}); nothing was "
                          "deleted", "error")
            return False
        self.inspected.clear_selection()
        self.inspected.relist()
        self.view.say(f"deleted session {sid!r} with its history and runs", "ok")
        return True

    # -- files ---------------------------------------------------------------------------

    def _path(self, path: str | Path | None) -> Path:
        chosen = str(path) if path is not None else str(self.view.path_box.value).strip()
        if not chosen:
            raise NeedsInput("enter a .json file path first")
        with self.view.sync():
            self.view.path_box.value = chosen
        return Path(chosen).expanduser()

    @action("export")
    def export(self, path: str | Path | None = None, *, overwrite: bool | None = None) -> bool:
        """Write the loaded version's state to a .json file (indented, tagged types as stored),
        atomically; an existing file is replaced only with ``overwrite`` (default: the
        "overwrite" box, which unticks after each export)."""
        self._need_base()
        target = self._path(path)
        loaded = self._selection.stored
        if loaded is None:
            self.view.say("export: the stored state cannot be read; nothing to export", "error")
            return False
        replace = bool(self.view.overwrite_box.value) if overwrite is None else overwrite
        try:
            with atomic_write(target, overwrite=replace) as out:
                out.write((self._selection.text + "\n").encode())
        except FileExistsError:
            self.view.say(f"export refused: {target} exists; tick overwrite to replace it "
                          "(nothing was written)", "error")
            return False
        self.view.overwrite_box.value = False  # an overwrite is allowed once, for that file
        self.view.say(f"exported version {loaded.version} of {loaded.session_id!r} "
                      f"to {target}", "ok")
        return True

    @action("import")
    def import_(self, path: str | Path | None = None) -> bool:
        """Load a .json file into the editor (checked as Save would check it); Save stores it.
        Only a regular file of at most IMPORT_LIMIT bytes is read."""
        self._need_base()
        source = self._path(path)
        try:
            text = read_regular_file(source, IMPORT_LIMIT).decode("utf-8")
            render.parse_state(text)
        except (render.EditRefused, FileRefused, UnicodeDecodeError) as refused:
            self.view.say(f"import of {source} refused: {refused}", "error")
            return False
        self.view.editor_text = text
        self.view.say(f"{source} is in the editor: review it, then Save (nothing is written yet)")
        return True
