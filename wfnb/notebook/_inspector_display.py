"""How a shown inspector reaches the notebook: three outputs of its cell.

1. the widget (the live panel);
2. its static snapshot (_inspector_snapshot.py) as text/html, an output of its own with a
   display id, re-published (``update_display``) when the page or the selection changes, at
   most once a THROTTLE: a saved notebook shows on GitHub, nbviewer or after a reload without
   the kernel what the panel showed last. Re-publishing the widget's own bundle instead would
   make JupyterLab build a second view of the panel. While the panel renders, its stylesheet
   hides this output (CSS ``:has``), so a live notebook shows the panel once;
3. a small script (application/javascript, run by JupyterLab and Notebook 7 for outputs of the
   running kernel, never for a notebook reopened untrusted) that tells the kernel whether the
   panel is in sight (an IntersectionObserver, and the browser tab's visibility) by typing
   "visible" or "hidden" into a hidden Text widget of the panel: stock ipywidgets, no
   front-end build. Checks for writes elsewhere pause while it says "hidden".
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from wfnb.notebook._inspector_live import Cancel, Schedule

THROTTLE = 1.0  # seconds between two re-publications of the snapshot, at least
VISIBILITY_CLASS = "wfnb-visibility"  # the hidden Text the script types into

_SCRIPT = """(function (element) {
  var panelClass = %(panel)s, boxClass = %(box)s, panel = null, inSight = false;
  var observer = new IntersectionObserver(function (entries) {
    inSight = entries[entries.length - 1].isIntersecting;
    tell();
  });
  function tell() {
    var input = panel && panel.querySelector("." + boxClass + " input");
    var now = inSight && document.visibilityState === "visible" ? "visible" : "hidden";
    if (input && input.value !== now) {
      input.value = now;
      input.dispatchEvent(new Event("input", {bubbles: true}));
    }
  }
  document.addEventListener("visibilitychange", tell);
  var timer = setInterval(function () {
    var found = document.querySelector("." + panelClass);
    if (found !== panel) {
      if (panel) { observer.unobserve(panel); }
      panel = found;
      if (panel) { observer.observe(panel); }
    }
    if (!panel && !element.isConnected) {
      clearInterval(timer);
      document.removeEventListener("visibilitychange", tell);
    }
  }, 500);
})(element);"""


def visibility_script(panel_class: str) -> str:
    """The script that reports whether the panel carrying ``panel_class`` is in sight."""
    return _SCRIPT % {"panel": json.dumps(panel_class), "box": json.dumps(VISIBILITY_CLASS)}


class LiveDisplay:
    """Shows the panel (``widget``) with its snapshot and visibility script, and keeps the
    snapshot output current: :meth:`changed` after the page or selection changed."""

    def __init__(
        self, widget: Any, snapshot: Callable[[], str], schedule: Schedule
    ) -> None:
        self._widget, self._snapshot, self._schedule = widget, snapshot, schedule
        self.panel_class = f"wfnb-panel-{uuid.uuid4().hex[:12]}"
        widget.add_class(self.panel_class)
        self._display_id: str | None = None
        self._pending: Cancel | None = None

    def show(self) -> None:
        """Publish the three outputs (the snapshot as it is now)."""
        from IPython.display import display

        self._display_id = uuid.uuid4().hex
        panel = self._widget._repr_mimebundle_()
        panel["text/plain"] = "wfnb state inspector (a live panel: it needs the notebook's kernel)"
        snapshot = {"text/html": self._snapshot()}
        script = {"application/javascript": visibility_script(self.panel_class)}
        for bundle, display_id in ((panel, None), (snapshot, self._display_id), (script, None)):
            display(bundle, raw=True, display_id=display_id)  # type: ignore[no-untyped-call]

    def changed(self) -> None:
        """The page or selection changed: re-publish the snapshot within THROTTLE seconds."""
        if self._display_id is not None and self._pending is None:
            self._pending = self._schedule(THROTTLE, self.publish)

    def publish(self) -> None:
        """Re-publish the snapshot now (the throttle's tick)."""
        from IPython.display import update_display

        self._pending = None
        if self._display_id is not None:
            update_display({"text/html": self._snapshot()},  # type: ignore[no-untyped-call]
                           raw=True, display_id=self._display_id)

    def stop(self) -> None:
        if self._pending is not None:
            self._pending()
            self._pending = None
