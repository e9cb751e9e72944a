"""What the state inspector writes: Save, Restore, Delete, Revert, Export and Import.

Nothing here overwrites or merges silently. Save and Restore first check that the session is
still at the version the editor was loaded from and refuse, with a diff, when it is not (a plain
compare-and-swap save would merge another writer's changes to other keys); the write itself is
still a compare-and-swap on that version, so a writer slipping in between is caught too, and a
merge the storage made then is reported, not hidden. Delete asks first. Export replaces a file
only when "overwrite" is ticked, and writes it whole or not at all; Import reads only a regular
file of at most IMPORT_LIMIT bytes (a FIFO or a device would hang the kernel).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from wfnb._errors import SessionConflictError, WfnbError
from wfnb._files import FileRefused, atomic_write, read_regular_file
from wfnb._format import when
from wfnb.notebook import _inspector_render as render
from wfnb.storage import SaveResult, StoredSession, VersionInfo, WorkflowStorage

_P = ParamSpec("_P")
_WRITERS = {"run": "a workflow run", "save": "a save", "edit": "an edit",
            "restore": "a restore", "import": "an import"}  # what wrote a version
_Self = TypeVar("_Self", bound="EditActions")
IMPORT_LIMIT = 64 * 1024 * 1024  # bytes: a state file bigger than this is refused, not read


class NeedsInput(WfnbError):
    """An action that needs something (a session, a version, a path) that is not there yet."""


def action(
    method: Callable[Concatenate[_Self, _P], bool],
) -> Callable[Concatenate[_Self, _P], bool]:
    """Run an inspector action; a storage or file error becomes the status line (False).

    Any action but Delete itself disarms a pending delete confirmation.
    """

    def run(self: _Self, *args: _P.args, **kwargs: _P.kwargs) -> bool:
        if method.__name__ != "delete":
            self._disarm()
        try:
            return method(self, *args, **kwargs)
        except (WfnbError, OSError) as error:
            what = method.__name__.strip("_").replace("_", " ")
            self._say(f"{what} failed: {error}", "error")
            return False

    return functools.update_wrapper(run, method)  # type: ignore[return-value]


class EditActions:
    """The writing half of :class:`~wfnb.notebook._inspector.StateInspector` (a mixin): it uses
    the widgets and the loaded session the inspector keeps, and its ``_load``/``_list``."""

    storage: WorkflowStorage
    _selected: str | None
    _loaded: StoredSession | None  # None: nothing selected, or unreadable
    _base_version: int | None  # the version an edit would replace
    _loaded_text: str
    _history: list[VersionInfo]
    _armed: tuple[str, int] | None  # a delete waiting for its confirmation
    _status: str
    _status_html: Any
    _editor: Any
    _edit_diff: Any
    _delete_button: Any
    _path_box: Any
    _overwrite_box: Any

    def _load(self) -> bool:
        raise NotImplementedError

    def _list(self) -> None:
        raise NotImplementedError

    def _clear_selection(self) -> None:
        raise NotImplementedError

    def _sync(self) -> Any:
        raise NotImplementedError

    @property
    def status(self) -> str:
        """The status line as plain text."""
        return self._status

    def _say(self, text: str, kind: str = "info") -> None:
        self._status = text
        self._status_html.value = render.status_html(text, kind)

    @property
    def state_text(self) -> str:
        """The editor's text (settable); Save stores it."""
        return str(self._editor.value)

    @state_text.setter
    def state_text(self, text: str) -> None:
        self._editor.value = text

    @property
    def history(self) -> list[VersionInfo]:
        """The selected session's versions, newest first (as of its last load)."""
        return list(self._history)

    @property
    def dirty(self) -> bool:
        """Whether the editor holds changes that are not saved."""
        return self.state_text != self._loaded_text

    def _need_base(self) -> int:
        """The version an edit would replace (the stored one when the editor was loaded)."""
        if self._selected is None or self._base_version is None:
            raise NeedsInput("select a session first")
        return self._base_version

    # -- writing -------------------------------------------------------------------------

    @action
    def save(self) -> bool:
        """Store the editor's text as the next version (source "edit"), if it is a storable
        JSON object and the session is still at the version the editor was loaded from."""
        base = self._need_base()
        try:
            encoded = render.parse_state(self.state_text)
        except render.EditRefused as refused:
            self._say(f"not saved: {refused}", "error")
            return False
        sid = self._selected
        assert sid is not None
        return self._write("save", base, lambda: self.storage.save(
            sid, encoded, expected_version=base, source="edit"))

    @action
    def restore(self, version: int | None) -> bool:
        """Append a new version equal to ``version`` (history is never rewritten)."""
        base = self._need_base()
        if version is None:
            self._say("pick a version in the History tab first", "error")
            return False
        sid = self._selected
        assert sid is not None
        return self._write(f"restore version {version}", base, lambda: self.storage.restore(
            sid, version, expected_version=base))

    def _write(self, what: str, base: int, write: Callable[[], SaveResult]) -> bool:
        """Run ``write`` if the session is still at ``base``; report what happened honestly.

        The check comes first because a compare-and-swap save would merge another writer's
        changes to other keys; the swap itself still catches a writer slipping in between.
        """
        sid = self._selected
        assert sid is not None
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
            self._say(f"{what}: no change from version {base}; nothing was written")
            return True
        self._load()
        self._list()
        if result.merged_keys:
            keys = ", ".join(repr(key) for key in result.merged_keys)
            self._say(
                f"{what}: stored as version {result.version}, but another writer saved in "
                f"between and the storage merged their change to {keys} into yours; the "
                "editor now shows the merged state as stored",
                "warn",
            )
        else:
            self._say(f"{what}: stored as version {result.version}", "ok")
        return True

    def _refuse(self, what: str, base: int, latest: VersionInfo | None) -> None:
        """Say why ``what`` was not done and show what you loaded against what is stored now."""
        sid = self._selected
        if latest is None:
            self._say(f"{what} refused: session {sid!r} was deleted since you loaded version "
                      f"{base}; nothing was written", "error")
            return
        by = _WRITERS.get(latest.source, latest.source)
        by += f" (run {latest.run_id})" if latest.run_id else ""
        self._say(
            f"{what} refused: session {sid!r} changed since you loaded version {base}: it is "
            f"now version {latest.version}, written by {by} at {when(latest.created_at)}. "
            "Nothing was written; your text stays in the editor. The diff shows what changed; "
            "Refresh loads the stored version (copy your text first).",
            "error",
        )
        assert sid is not None
        try:
            current = self.storage.read(sid)
            if self._loaded is None or current is None:
                raise NeedsInput("the loaded or the stored state cannot be read")
            diff = render.unified_diff(
                self._loaded.document, current.document, f"{sid} version {base} (loaded)",
                f"{sid} version {current.version} (stored now)",
            )
        except WfnbError as error:
            diff = f"(no diff: {error})"
        self._edit_diff.value = render.diff_html(
            f"what you loaded (version {base}) → what is stored now (version {latest.version})",
            diff)

    @action
    def revert(self) -> bool:
        """Put the loaded version's text back in the editor (nothing is read or written)."""
        self._need_base()
        self._editor.value = self._loaded_text
        self._edit_diff.value = ""
        self._say(f"editor reverted to version {self._base_version}")
        return True

    @action
    def delete(self, confirm: bool = False) -> bool:
        """Delete the selected session with its history and runs.

        Without ``confirm`` the first call only asks (a second call, or click, deletes); the
        delete is refused if the session changed since it was loaded.
        """
        base = self._need_base()
        sid = self._selected
        assert sid is not None
        if not confirm and self._armed != (sid, base):
            self._armed = (sid, base)
            self._delete_button.description, self._delete_button.button_style = "Confirm", "danger"
            self._say(f"delete session {sid!r} (version {base}) with its history and runs? "
                      "Click Delete again to confirm; anything else cancels.", "warn")
            return False
        self._disarm()
        try:
            self.storage.delete(sid, expected_version=base)
        except SessionConflictError as conflict:
            self._say(f"delete refused: session {sid!r} changed since you loaded version {base} "
                      f"(it is now version {conflict.stored_version}); nothing was deleted",
                      "error")
            return False
        self._clear_selection()
        self._list()
        self._say(f"deleted session {sid!r} with its history and runs", "ok")
        return True

    def _disarm(self) -> None:
        if self._armed is not None:
            self._armed = None
            self._delete_button.description, self._delete_button.button_style = "Delete", ""

    # -- files ---------------------------------------------------------------------------

    def _path(self, path: str | Path | None) -> Path:
        chosen = str(path) if path is not None else str(self._path_box.value).strip()
        if not chosen:
            raise NeedsInput("enter a .json file path first")
        with self._sync():
            self._path_box.value = chosen
        return Path(chosen).expanduser()

    @action
    def export(self, path: str | Path | None = None, *, overwrite: bool | None = None) -> bool:
        """Write the loaded version's state to a .json file (indented, tagged types as stored),
        atomically; an existing file is replaced only with ``overwrite`` (default: the
        "overwrite" box, which unticks after each export)."""
        self._need_base()
        target = self._path(path)
        if self._loaded is None:
            self._say("export: the stored state cannot be read; nothing to export", "error")
            return False
        replace = bool(self._overwrite_box.value) if overwrite is None else overwrite
        try:
            with atomic_write(target, overwrite=replace) as out:
                out.write((self._loaded_text + "\n").encode())
        except FileExistsError:
            self._say(f"export refused: {target} exists; tick overwrite to replace it "
                      "(nothing was written)", "error")
            return False
        self._overwrite_box.value = False  # an overwrite is allowed once, for the file it was for
        self._say(f"exported version {self._loaded.version} of {self._loaded.session_id!r} "
                  f"to {target}", "ok")
        return True

    @action
    def import_(self, path: str | Path | None = None) -> bool:
        """Load a .json file into the editor (checked as Save would check it); Save stores it.
        Only a regular file of at most IMPORT_LIMIT bytes is read."""
        self._need_base()
        source = self._path(path)
        try:
            text = read_regular_file(source, IMPORT_LIMIT).decode("utf-8")
            render.parse_state(text)
        except (render.EditRefused, FileRefused, UnicodeDecodeError) as refused:
            self._say(f"import of {source} refused: {refused}", "error")
            return False
        self._editor.value = text
        self._say(f"{source} is in the editor: review it, then Save (nothing is written yet)")
        return True

    # -- history -------------------------------------------------------------------------

    def diff(self, version: int) -> str:
        """A unified diff from ``version`` to the loaded (current) one; "" when equal."""
        sid, new = self._selected, self._loaded
        if sid is None or new is None:
            raise NeedsInput("select a readable session first")
        old = self.storage.read(sid, version)
        if old is None:
            raise NeedsInput(f"session {sid!r} is not stored (deleted?)")
        return render.unified_diff(old.document, new.document, f"{sid} version {version}",
                                   f"{sid} version {new.version} (current)")
