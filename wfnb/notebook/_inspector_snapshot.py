"""The inspector as static HTML, for where widgets cannot render (GitHub, nbviewer, a notebook
reopened without its kernel): the page of sessions and the selected state, every stored string
escaped (through _inspector_render's helpers), no script and nothing fetched.

It is an output of its own under the widget, re-published as the page or the selection changes
(_inspector_display.py), so a saved notebook holds what the panel showed last; its heading says
when that was. Frontends that render the widget hide it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from wfnb._format import size, when
from wfnb.notebook import _inspector_render as render
from wfnb.notebook._inspector_actions import Selection
from wfnb.storage import SessionSummary

SNAPSHOT_CHARS = 20_000  # characters of the selected state kept in the snapshot; more is cut


def snapshot_html(
    summaries: Sequence[SessionSummary], page_line: str, selection: Selection, taken: dt.datetime
) -> str:
    """The page and the selected state as plain, escaped HTML, headed by when it was taken."""
    rows = [[s.session_id, s.workflow_name or "-", when(s.updated_at), str(s.version),
             size(s.state_bytes)] for s in summaries]
    parts = [
        render.note_html(f"wfnb state inspector: a snapshot taken {when(taken)} (the live "
                         "panel needs the notebook's kernel)"),
        render.table_html(["session", "workflow", "updated", "version", "size"], rows),
        render.note_html(page_line),
    ]
    if selection.session_id is not None:
        version = f", version {selection.base_version}" if selection.base_version else ""
        parts.append(render.note_html(f"session {selection.session_id!r}{version}"))
        text = selection.text
        if len(text) > SNAPSHOT_CHARS:
            text = (text[:SNAPSHOT_CHARS]
                    + f"\n... {len(text) - SNAPSHOT_CHARS:,} more characters not in the snapshot")
        parts.append(render.pre_html(text))
    return f'<div class="wfnb-snapshot">{"".join(parts)}</div>'
