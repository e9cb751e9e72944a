"""What the state inspector shows, as plain text and escaped HTML; no widgets here.

Every string that comes from the database (session ids, workflow names, state, run output and
errors) goes through :func:`html.escape` before it is put into HTML: an HTML widget renders its
value as markup, so an unescaped ``<img src=x onerror=...>`` in a state would run.
"""

from __future__ import annotations

import contextlib
import html
import json
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from wfnb._errors import UnstorableStateError
from wfnb._format import clip, damaged, duration, json_diff, size, tokens, when
from wfnb.storage import (
    TAG,
    EncodedState,
    RunRecord,
    SessionSummary,
    StepRecord,
    StoredSession,
    VersionInfo,
    decode_state,
    encode_state,
)

MAX_DIFF_LINES = 2000  # a diff longer than this is cut in the HTML (diff() returns all of it)
EXCERPT = 300  # characters of a run's input, output or error shown in the Runs tab
STEP_RUNS = 10  # the newest runs whose steps the Runs tab draws
MAX_STEPS = 200  # steps drawn per run (a note counts the rest)
_STEP_COLOURS = {"completed": "#2da44e", "failed": "#cf222e", "running": "#bf8700"}
_SERVED = "repeating-linear-gradient(45deg,#8c959f 0 3px,#d0d7de 3px 6px)"  # hatched: served
_ID_WIDTH, _WORKFLOW_WIDTH = 36, 20

# Colours that read on light and dark themes alike (JupyterLab, Notebook 7, VS Code).
_KINDS = {"info": "inherit", "ok": "#1a7f37", "warn": "#9a6700", "error": "#cf222e"}
_DIFF_BACKGROUNDS = {"+": "rgba(46,160,67,.18)", "-": "rgba(248,81,73,.18)",
                     "@": "rgba(84,174,255,.15)"}
STYLE = """<style>
.wfnb-inspector select, .wfnb-inspector textarea, .wfnb-inspector .wfnb-mono {
  font-family: var(--jp-code-font-family, monospace); font-size: 12px; }
.wfnb-inspector .wfnb-mono { white-space: pre; }
.wfnb-inspector pre { margin: 0; max-height: 420px; overflow: auto; }
.wfnb-inspector table.wfnb-table td, .wfnb-inspector table.wfnb-table th {
  text-align: left; vertical-align: top; padding: 1px 8px; line-height: 1.4; }
.jp-OutputArea:has(.wfnb-inspector) > .jp-OutputArea-child:has(.wfnb-snapshot) {
  display: none; }
</style>"""


class EditRefused(ValueError):
    """The editor's text cannot be saved as a state; the message says why."""


# -- plain text ------------------------------------------------------------------------------


def row_label(session: SessionSummary) -> str:
    """One line of the session list: id, workflow, updated, version, size (fixed columns)."""
    return (f"{clip(session.session_id, _ID_WIDTH):<{_ID_WIDTH}}  "
            f"{clip(session.workflow_name or '-', _WORKFLOW_WIDTH):<{_WORKFLOW_WIDTH}}  "
            f"{when(session.updated_at)}  v{session.version:<5} {size(session.state_bytes):>9}"
            + ("  (damaged)" if session.damaged is not None else ""))


ROWS_HEADER = (f"{'SESSION':<{_ID_WIDTH}}  {'WORKFLOW':<{_WORKFLOW_WIDTH}}  "
               f"{'UPDATED':<19}  {'VERSION':<6} {'SIZE':>9}")


def version_label(info: VersionInfo) -> str:
    """One line of the history list: version, time, source, run id, size, and where a fork's
    first version came from ("forked from SESSION vN")."""
    run = f"run {info.run_id[:8]}" if info.run_id else ""
    origin = (f"  forked from {clip(info.forked_from_session, _ID_WIDTH)} "
              f"v{info.forked_from_version}" if info.forked_from_session is not None else "")
    return (f"v{info.version:<5} {when(info.created_at)}  {info.source:<8} {run:<12} "
            f"{size(info.state_bytes):>9}{origin}")


def unified_diff(old: bytes, new: bytes, old_label: str, new_label: str) -> str:
    """A unified diff of two stored documents, indented with sorted keys ("" when equal)."""
    return "\n".join(json_diff(old, new, old_label, new_label))


def _refuse_constant(name: str) -> Any:
    raise EditRefused(f"{name} is not valid JSON (NaN and Infinity are refused)")


def parse_state(text: str) -> EncodedState:
    """The editor's text as a state ready to save, or EditRefused saying why (nothing written).

    The text must be JSON (parsed by the standard library, which keeps big integers exact, so
    that encoding can refuse them by path), an object, and storable. Tagged values as the
    editor shows them (``{"$wfnb": "datetime", "v": ...}``) are revived, so they round-trip;
    anything else under the reserved key is refused by encode_state, naming its path.
    """
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise EditRefused(f"the text is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise EditRefused(
            f"a state must be a JSON object {{...}}, not a JSON {_json_kind(value)}"
        )
    if TAG in text:  # a malformed tag is left as it is: encode_state names its path
        with contextlib.suppress(ValueError, KeyError, TypeError, IndexError):
            value = decode_state(orjson.dumps(value), tagged=True)
    try:
        return encode_state(value)
    except UnstorableStateError as error:
        raise EditRefused(str(error)) from None


def _json_kind(value: Any) -> str:
    kinds = {list: "array", str: "string", bool: "boolean", type(None): "null"}
    return kinds.get(type(value), "number")


# -- HTML ------------------------------------------------------------------------------------


def status_html(text: str, kind: str) -> str:
    """The status line: escaped text in the colour of its kind (info, ok, warn, error)."""
    return f'<span style="color:{_KINDS[kind]}">{html.escape(text)}</span>'


def pre_html(text: str) -> str:
    return f'<pre class="wfnb-mono">{html.escape(text)}</pre>'


def note_html(text: str, kind: str = "info") -> str:
    return f"<div>{status_html(text, kind)}</div>"


def diff_html(title: str, diff: str) -> str:
    """A diff with added, removed and hunk lines shaded; long diffs are cut with a note."""
    if not diff:
        return note_html(f"{title}: no difference")
    lines = diff.splitlines()
    shown = []
    for line in lines[:MAX_DIFF_LINES]:
        header = line.startswith(("---", "+++"))
        background = None if header else _DIFF_BACKGROUNDS.get(line[:1])
        escaped = html.escape(line)
        shown.append(f'<span style="background:{background}">{escaped}</span>'
                      if background else escaped)
    cut = len(lines) - MAX_DIFF_LINES
    more = note_html(f"... {cut} more lines (diff() returns all of them)") if cut > 0 else ""
    return (f"<div><b>{html.escape(title)}</b></div>"
            f'<pre class="wfnb-mono">{chr(10).join(shown)}</pre>{more}')


def table_html(header: Sequence[str], rows: Iterable[Sequence[str]], nowrap: int = 1) -> str:
    """A table of plain-text cells (every cell escaped); the first ``nowrap`` columns unbroken."""
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "".join(
        "<tr>" + "".join(
            (f'<td style="white-space:nowrap">{html.escape(cell)}</td>' if column < nowrap
             else f"<td>{html.escape(cell)}</td>")
            for column, cell in enumerate(row)
        ) + "</tr>"
        for row in rows
    )
    return f'<table class="wfnb-table"><tr>{head}</tr>{body}</table>'


def metadata_html(stored: StoredSession) -> str:
    """The selected session's facts: id, workflow, version, times, size, top-level keys."""
    keys = list(stored.session_state)
    shown_keys = ", ".join(clip(key, 40) for key in keys[:12]) + (" ..." if len(keys) > 12 else "")
    return table_html(["", ""], [
        ["session", stored.session_id],
        ["workflow", stored.workflow_name or "-"],
        ["version", str(stored.version)],
        ["created", when(stored.created_at)],
        ["updated", when(stored.updated_at)],
        ["size", size(stored.state_bytes)],
        [f"keys ({len(keys)})", shown_keys],
    ])


def runs_html(runs: Sequence[RunRecord]) -> str:
    """The Runs tab: status, timings, version written, tokens, input, output excerpt, error,
    and the answers a run was given (who answered) with the question it waits for."""
    if not runs:
        return note_html("no runs recorded for this session")
    rows = []
    for run in runs:
        took = duration(run.ended_at - run.started_at) if run.ended_at is not None else ""
        rows.append([
            run.status, when(run.started_at), took,
            str(run.version) if run.version is not None else "",
            tokens(run.input_tokens, run.output_tokens), run.run_id[:8],
            clip(damaged(orjson.dumps(run.input).decode() if run.input is not None else "",
                         run.damaged), EXCERPT),
            clip(run.output or "", EXCERPT), clip(run.error or "", EXCERPT), run.dialogue(),
        ])
    return table_html(
        ["status", "started", "took", "version", "tokens", "run", "input", "output", "error",
         "questions and answers"],
        rows, 6
    )


def steps_html(runs: Sequence[RunRecord], steps: dict[str, list[StepRecord]]) -> str:
    """Each run's steps (``steps`` by run id): a timeline with one bar per step, placed and
    sized by its start and end within the run (served ones hatched), then one line each."""
    blocks = []
    for run in runs:
        mine = steps.get(run.run_id)
        if not mine:
            continue
        served = sum(step.cached for step in mine)
        title = (f"run {run.run_id[:8]} · {run.status} · {len(mine)} steps "
                 f"({len(mine) - served} run, {served} served from the record)")
        shown = mine[:MAX_STEPS]
        more = (note_html(f"... {len(mine) - MAX_STEPS} more steps (storage.steps() lists all)")
                if len(mine) > MAX_STEPS else "")
        rows = [[step.name, step.status, "from record" if step.cached else "",
                 "" if step.cached else duration(step.seconds), clip(step.error or "", EXCERPT)]
                for step in shown]
        blocks.append(
            f"<div style='margin-top:8px'><b>{html.escape(title)}</b></div>"
            + _timeline_html(run, shown) + more
            + table_html(["step", "status", "served", "took", "error"], rows, 3)
        )
    return "".join(blocks)


def _timeline_html(run: RunRecord, steps: Sequence[StepRecord]) -> str:
    """One row per step: its name, then a bar placed and sized by its start and end on the run's
    time axis (at least a few pixels wide, so an instant served step still shows); the tooltip
    names the step, its status and its duration. A legend says what the fills mean."""
    start = min([run.started_at, *(step.started_at for step in steps)]).timestamp()
    ends = [run.ended_at, *(step.ended_at for step in steps)]
    end = max([moment.timestamp() for moment in ends if moment is not None], default=start)
    span = max(end - start, 1e-6)
    rows = []
    for step in steps:
        left = min((step.started_at.timestamp() - start) / span * 100, 99.0)
        stop = step.ended_at.timestamp() if step.ended_at is not None else end
        width = min((stop - step.started_at.timestamp()) / span * 100, 100 - left)
        fill = _SERVED if step.cached else _STEP_COLOURS.get(step.status, "#8c959f")
        tip = f"{step.name}: {step.status}" + (", served from the record" if step.cached
                                               else f", {duration(step.seconds) or 'running'}")
        rows.append(
            f"<div title='{html.escape(tip, quote=True)}' style='display:flex;"
            "align-items:center;height:14px'>"
            "<div class='wfnb-mono' style='width:160px;overflow:hidden;text-overflow:ellipsis;"
            f"font-size:11px'>{html.escape(step.name)}</div>"
            "<div style='position:relative;flex:1;height:9px'>"
            f"<div style='position:absolute;left:{left:.2f}%;width:{width:.2f}%;min-width:5px;"
            f"height:100%;background:{fill};border-radius:2px'></div></div></div>"
        )
    legend = "".join(
        f"<span style='display:inline-block;width:10px;height:8px;margin:0 3px 0 10px;"
        f"background:{fill}'></span>{label}"
        for fill, label in ((_STEP_COLOURS["completed"], "ran"), (_SERVED, "served"),
                            (_STEP_COLOURS["failed"], "failed"),
                            (_STEP_COLOURS["running"], "running or killed"))
    )
    return (f"<div class='wfnb-timeline' style='max-width:720px;margin:4px 0'>{''.join(rows)}"
            f"<div style='font-size:11px;opacity:.8;margin-left:160px'>{legend}</div></div>")


def tree_outputs(document: bytes, root: str) -> tuple[dict[str, Any], ...]:
    """The State tab's Output: a collapsible JSON tree (JupyterLab and Notebook 7 render
    ``application/json`` as one). The state goes to the browser once, in the tree: front ends
    without a JSON renderer get a one-line note pointing to the Edit tab, not a second copy."""
    from IPython.display import JSON

    data, metadata = JSON(  # type: ignore[no-untyped-call]
        orjson.loads(document), expanded=False, root=root
    )._repr_json_()
    note = f"{root}: a JSON state of {size(len(document))} (its text is in the Edit tab)"
    bundle = {"application/json": data, "text/plain": note}
    return ({"output_type": "display_data", "data": bundle,
             "metadata": {"application/json": metadata}},)


def error_outputs(message: str) -> tuple[dict[str, Any], ...]:
    """An Output showing ``message`` as an error (escaped)."""
    return ({"output_type": "display_data", "metadata": {},
             "data": {"text/html": note_html(message, "error"), "text/plain": message}},)
