"""Showing a stream while it arrives, at a cost linear in its length.

Rich frontends: finished Markdown blocks are displayed once, in their final form, as outputs of
their own; only the unfinished tail lives in a placeholder that is updated at most
``refresh_rate`` times a second. A placeholder starts empty and is emptied again before it is
replaced, so every output's first message equals what the saved notebook holds (nbval compares
those) while nbclient, applying the updates, saves the final content too. Terminals get the
text as it comes.

A model's reasoning and tool calls are shown apart from the answer, where they came in the
stream: live above the answer's tail, then once, for good, as an output of their own (a
collapsed "Thinking" block and one line per tool call) when the answer text resumes. Answer text
shown before them is finished there, so where outputs split depends only on the stream's order.
"""

from __future__ import annotations

import itertools
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from wfnb._events import ToolCall, Usage
from wfnb.notebook._markdown import BlockSplitter, escape, to_html

Data = dict[str, str]
Publish = Callable[[Data, str, bool], None]  # (mime bundle, display_id, update)
_EMPTY: Data = {"text/plain": ""}


def ipython_publish(data: Data, display_id: str, update: bool) -> None:
    """Send a display (or an update of one) through IPython's display publisher."""
    from IPython.display import publish_display_data

    publish_display_data(  # type: ignore[no-untyped-call]
        data, transient={"display_id": display_id}, update=update
    )


@dataclass
class RunInfo:
    """What the status line says; filled in as the run's responses arrive."""

    workflow: str | None = None
    session_id: str | None = None
    run_id: str | None = None
    chunks: int = 0
    cached: bool = False
    started: float = 0.0
    usage: Usage | None = None

    def line(self, state: str, now: float) -> str:
        parts = [state]
        if self.workflow:
            parts.append(self.workflow)
        if self.session_id:
            parts.append(f"session {self.session_id}")
        if self.run_id:
            parts.append(f"run {self.run_id[:8]}")
        parts.append(f"{now - self.started:.1f} s")
        parts.append(f"{self.chunks} chunk{'s' if self.chunks != 1 else ''}")
        if self.usage is not None:
            parts.append(str(self.usage))
        if self.cached:
            parts.append("from session_state")
        return " · ".join(parts)


class View(Protocol):
    """Where a stream is shown."""

    def add(self, text: str) -> None: ...

    def think(self, text: str) -> None: ...

    def call(self, call: ToolCall) -> None: ...

    def tick(self) -> None: ...

    def finish(self, state: str) -> None: ...


class LiveView:
    """Live Markdown in a notebook (see the module docstring for the output protocol)."""

    def __init__(
        self,
        info: RunInfo,
        publish: Publish = ipython_publish,
        *,
        refresh_rate: float = 10.0,
        freeze_chars: int = 2000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.info, self._publish, self._clock = info, publish, clock
        self._interval = 1.0 / refresh_rate if refresh_rate > 0 else 0.0
        self._freeze_chars = freeze_chars
        prefix = f"wfnb-{uuid.uuid4().hex[:12]}"
        self._ids = (f"{prefix}-{n}" for n in itertools.count())
        info.started = clock()
        self._pending: list[str] = []
        self._tail = ""
        self._unshown = False  # the tail holds text the live placeholder does not show yet
        self._splitter = BlockSplitter()
        self._block_ends: list[int] = []  # in the tail
        self._next_refresh = 0.0
        self._aside = Aside()  # reasoning and tool calls not shown for good yet
        self._placeholder = self._show(_EMPTY)

    def _show(self, data: Data) -> str:
        display_id = next(self._ids)
        self._publish(data, display_id, False)
        return display_id

    def add(self, text: str) -> None:
        """Take one chunk; refresh the display if the refresh interval has passed."""
        self._end_aside()
        self._pending.append(text)
        self._refresh_when_due()

    def think(self, text: str) -> None:
        """Take a piece of the model's reasoning."""
        self._end_answer_part()
        self._aside.think(text)
        self._refresh_when_due()

    def call(self, call: ToolCall) -> None:
        """Take a tool call the model began (the same object again as it grows)."""
        self._end_answer_part()
        self._aside.call(call)
        self._refresh_when_due()

    def _refresh_when_due(self) -> None:
        self._unshown = True
        if self._clock() >= self._next_refresh:
            self.tick()

    def _end_answer_part(self) -> None:
        """Show the answer text so far for good, before reasoning or tool calls that follow it."""
        if self._aside or not (self._pending or self._tail):
            return
        self._absorb()
        self._replace_placeholder(self._tail)
        self._placeholder = self._show(_EMPTY)
        self._tail, self._block_ends, self._splitter = "", [], BlockSplitter()  # text anew

    def _end_aside(self) -> None:
        """Show the reasoning and tool calls for good, as one output, before the answer resumes."""
        if not self._aside:
            return
        self._replace_placeholder("")
        self._show(self._aside.bundle())
        self._placeholder = self._show(_EMPTY)
        self._aside = Aside()

    def tick(self) -> None:
        """Show what has arrived (called on chunks, and by runners while a source is idle).

        One update message per tick at most: a tick that freezes blocks empties the old
        placeholder and leaves the new one's first update to the next tick.
        """
        if not self._pending and not self._unshown:
            return
        now = self._clock()
        self._next_refresh = now + self._interval
        if self._absorb():
            self._unshown = bool(self._tail)
            return
        self._publish(self._live_bundle(now), self._placeholder, True)
        self._unshown = False

    def _absorb(self) -> bool:
        """Move arrived chunks into the tail and freeze every finished segment; True if any.

        A segment ends at the first block end at least ``freeze_chars`` into the tail: the
        content decides where outputs split, never the timing, so a re-run saves the same
        outputs (what nbval compares).
        """
        self._tail += "".join(self._pending)
        self._pending.clear()
        self._block_ends += self._splitter.feed(self._tail)
        froze = False
        while True:
            cut = next((end for end in self._block_ends if end >= self._freeze_chars), None)
            if cut is None:
                return froze
            self._replace_placeholder(self._tail[:cut])
            self._tail = self._tail[cut:]
            self._block_ends = [end - cut for end in self._block_ends if end > cut]
            self._splitter.drop(cut)
            self._placeholder = self._show(_EMPTY)
            froze = True

    def _replace_placeholder(self, final_text: str) -> None:
        """Empty the live placeholder and show ``final_text`` after it, once, for good."""
        self._publish(_EMPTY, self._placeholder, True)
        if final_text:
            self._show(markdown_bundle(final_text))

    def _live_bundle(self, now: float) -> Data:
        status = escape(self.info.line("running", now))
        return {
            "text/html": f"{self._aside.live_html()}{to_html(self._tail)}"
                         f"<div class='wfnb-status'>{status}</div>",
            "text/plain": "",
        }

    def finish(self, state: str) -> None:
        """Show the rest of the text and the final status line."""
        self._absorb()
        self._end_aside()
        self._replace_placeholder(self._tail)
        line = self.info.line(state, self._clock())
        self._show({"text/html": f"<div class='wfnb-status'>{escape(line)}</div>",
                    "text/plain": line})


def markdown_bundle(text: str) -> Data:
    """A finished piece of Markdown as a display bundle: safe HTML, and the text itself."""
    return {"text/html": f"<div class='wfnb-md'>{to_html(text)}</div>", "text/plain": text}


@dataclass
class Aside:
    """Reasoning and tool calls shown apart from the answer, in stream order: live, then as one
    output. A run of reasoning is a list of its pieces; a tool call is the growing ToolCall."""

    items: list[list[str] | ToolCall] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.items)

    def think(self, text: str) -> None:
        last = self.items[-1] if self.items else None
        if isinstance(last, list):
            last.append(text)
        else:
            self.items.append([text])

    def call(self, call: ToolCall) -> None:
        if not any(item is call for item in self.items):
            self.items.append(call)

    def bundle(self) -> Data:
        """The final output: collapsed Thinking blocks, one line per tool call."""
        html, plain = [], []
        for item in self.items:
            if isinstance(item, ToolCall):
                html.append(_call_html(item))
                plain.append(f"tool call: {item.summary()}")
            else:
                reasoning = "".join(item)
                html.append(_thinking_html(reasoning, ""))
                plain.append(f"Thinking:\n{reasoning.strip()}")
        return {"text/html": "".join(html), "text/plain": "\n".join(plain)}

    def live_html(self) -> str:
        """While streaming: each run of reasoning's last lines, open, and the tool calls."""
        html = []
        for item in self.items:
            if isinstance(item, ToolCall):
                html.append(_call_html(item))
            else:
                html.append(_thinking_html(_last(item, _LIVE_THOUGHTS), " open"))
        return "".join(html)


_LIVE_THOUGHTS = 1500  # characters of reasoning shown while it streams (bounds each refresh)


def _last(pieces: list[str], count: int) -> str:
    """The last ``count`` characters of the joined pieces (joining only those needed)."""
    size, start = 0, len(pieces)
    while start > 0 and size <= count:
        start -= 1
        size += len(pieces[start])
    text = "".join(pieces[start:])
    return text if len(text) <= count else "…" + text[-count:]


def _thinking_html(reasoning: str, attributes: str) -> str:
    return (
        f"<details class='wfnb-thinking'{attributes}><summary>Thinking</summary>"
        f"<div style='white-space:pre-wrap;opacity:0.7'>{escape(reasoning.strip())}</div>"
        "</details>"
    )


def _call_html(call: ToolCall) -> str:
    return f"<div class='wfnb-tool'>🔧 <code>{escape(call.summary())}</code></div>"


class TextView:
    """Plain text for terminals: chunks written as they come, the status line at the end;
    reasoning after a "Thinking:" label, and one line per tool call, apart from the answer."""

    def __init__(self, info: RunInfo, clock: Callable[[], float] = time.monotonic) -> None:
        self.info, self._clock = info, clock
        self._ends_with_newline = True
        self._thinking = False
        self._calls: list[ToolCall] = []
        info.started = clock()

    def add(self, text: str) -> None:
        self._end_aside()
        self._write(text)

    def think(self, text: str) -> None:
        if not self._thinking:
            self._write(("" if self._ends_with_newline else "\n") + "Thinking: ")
            self._thinking = True
        self._write(text)

    def call(self, call: ToolCall) -> None:
        if not any(known is call for known in self._calls):
            self._calls.append(call)

    def tick(self) -> None:
        """Nothing to do: text is written as it comes."""

    def finish(self, state: str) -> None:
        self._end_aside()
        newline = "" if self._ends_with_newline else "\n"
        self._write(f"{newline}[{self.info.line(state, self._clock())}]\n")

    def _end_aside(self) -> None:
        """After reasoning or tool calls, before the answer resumes: the calls, one a line."""
        if not (self._thinking or self._calls):
            return
        lines = "".join(f"[tool call: {call.summary()}]\n" for call in self._calls)
        self._write(("" if self._ends_with_newline else "\n") + lines + "\n")
        self._thinking, self._calls = False, []

    def _write(self, text: str) -> None:
        if text:
            sys.stdout.write(text)
            sys.stdout.flush()
            self._ends_with_newline = text.endswith("\n")
