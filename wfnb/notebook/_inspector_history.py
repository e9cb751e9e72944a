"""The state inspector's History tab, past Restore: diffs between versions and between sessions,
and Fork.

Fork starts a new session from the picked version (or, when none is picked, the version loaded),
through ``storage.fork``: the source is only read, a taken id is refused (nothing written),
and the fork is then shown, unless the editor holds unsaved text, which is never dropped
without asking. Compare diffs the selected session (its picked or loaded version) against
another session's current state, rendered as the version diffs are.

:class:`HistoryActions` works on the panel and on the inspector through the
:class:`~wfnb.notebook._inspector_actions.Inspected` interface, as EditActions does (both are
:class:`~wfnb.notebook._inspector_actions.PanelActions`).
"""

from __future__ import annotations

from wfnb.notebook import _inspector_render as render
from wfnb.notebook._inspector_actions import NeedsInput, PanelActions, action
from wfnb.storage import StoredSession


class HistoryActions(PanelActions):
    """Diff, Compare and Fork, for the session the inspector has selected."""

    def _loaded(self) -> StoredSession:
        """The selected session as loaded; NeedsInput when there is none (or unreadable)."""
        selection = self._selection
        if selection.session_id is None or selection.stored is None:
            raise NeedsInput("select a readable session first")
        return selection.stored

    def _read(self, session_id: str, version: int | None = None) -> StoredSession:
        stored = self.storage.read(session_id, version)
        if stored is None:
            raise NeedsInput(f"no session {session_id!r} in table {self.storage.table_name!r}")
        return stored

    def _version(self, version: int | None) -> StoredSession:
        """The selected session at ``version``: as loaded when None or the loaded version."""
        loaded = self._loaded()
        return loaded if version in (None, loaded.version) else self._read(
            loaded.session_id, version)

    def diff(self, version: int) -> str:
        """A unified diff from ``version`` to the loaded (current) one; "" when equal."""
        new = self._loaded()
        old = self._read(new.session_id, version)
        return render.unified_diff(old.document, new.document, f"{new.session_id} version "
                                   f"{version}", f"{new.session_id} version {new.version} "
                                   "(current)")

    def compare(self, other: str, version: int | None = None) -> str:
        """A unified diff from session ``other``'s current state to the selected session's
        ``version`` (default: the loaded one); "" when equal."""
        mine = self._version(version)
        theirs = self._read(other)
        return render.unified_diff(
            theirs.document, mine.document, f"{other} version {theirs.version} (current)",
            f"{mine.session_id} version {mine.version}")

    @action("compare")
    def show_comparison(self, other: str | None = None, version: int | None = None) -> bool:
        """Show :meth:`compare` of ``other`` (default: the "compare with" box) and ``version``
        (default: the picked one, else the loaded one) in the History tab."""
        chosen = (other if other is not None else str(self.view.compare_box.value)).strip()
        if not chosen:
            raise NeedsInput("enter the id of a session to compare with")
        picked = version if version is not None else self.view.versions.value
        mine = self._version(picked)
        diff = self.compare(chosen, mine.version)
        self.view.history_diff.value = render.diff_html(
            f"session {chosen!r} (current) → session {mine.session_id!r} version {mine.version}",
            diff)
        lines = sum(line.startswith(("+", "-")) for line in diff.splitlines()[2:])
        self.view.say(f"compared with session {chosen!r}: "
                      + (f"{lines} lines differ" if diff else "no difference"))
        return True

    @action("fork")
    def fork(self, version: int | None = None, new_session_id: str | None = None) -> bool:
        """Start a new session from ``version`` of the selected one (default: the picked
        version, else the loaded one) under ``new_session_id`` (default: the "new id" box, else
        a fresh uuid), then show it and list it."""
        source = self._loaded()
        picked = version if version is not None else self.view.versions.value
        at = picked if picked is not None else source.version
        new_id = new_session_id or str(self.view.fork_box.value).strip() or None
        forked = self.storage.fork(source.session_id, at, new_id)
        with self.view.sync():
            self.view.fork_box.value = ""
        self.inspected.relist()
        done = f"forked session {source.session_id!r} version {at} as {forked.session_id!r}"
        if self.inspected.select(forked.session_id):
            self.view.say(f"{done}: now shown (the source is unchanged)", "ok")
        elif self.view.switch_to == forked.session_id:  # asked to discard unsaved text
            self.view.say(f"{done}; your unsaved text is still in the editor: discard it to "
                          "show the fork? (Yes / No below)", "warn")
        else:
            self.view.say(f"{done}, but showing it failed: {self.view.status}", "error")
        return True
