"""Showing a stream while it arrives, at a cost linear in its length.

Rich frontends: the text is cut into pieces where its content says (``_split``: between blocks,
or inside a long code block, list, table or paragraph, rendered so the halves meet seamlessly);
each finished piece is displayed once, in its final form, as an output of its own, and only the
unfinished tail lives in a placeholder that is updated at most ``refresh_rate`` times a second,
so each refresh renders a bounded tail and the bytes sent grow linearly with the answer. A
placeholder starts empty and is emptied again before it is replaced, so every output's first
message equals what the saved notebook holds (nbval compares those) while nbclient, applying the
updates, saves the final content too. Terminals get the text as it comes.

A model's reasoning and tool calls are shown apart from the answer, where they came in the
stream: live above the answer's tail, then once, for good, as an output of their own (a
collapsed "Thinking" block and one line per tool call) when the answer text resumes. Answer text
shown before them is finished there, so where outputs split depends only on the stream's order.
"""

from __future__ import annotations

import itertools
import shlex
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeGuard

from wfnb._events import RunEvent, RunResponse, ToolCall, Usage
from wfnb._format import clip, noun, visible
from wfnb.notebook._aside import Aside
from wfnb.notebook._markdown import escape, piece_html
from wfnb.notebook._split import BlockSplitter, Joint
from wfnb.storage import Question

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
    chunks: int = 0  # chunks that carried answer text
    tool_calls: int = 0
    cached: bool = False
    started: float = 0.0
    usage: Usage | None = None
    step: str | None = None  # the step running or served last
    step_served: bool = False  # ... served from its record
    steps_run: int = 0
    steps_served: int = 0
    question: Question | None = None  # what the run asked, when it stopped to wait for it
    text_before: str = ""  # ... and the text it streamed first (resumed, the run replays it)

    def line(self, state: str, now: float) -> str:
        parts = [state]
        if self.workflow:
            parts.append(self.workflow)
        if self.session_id:
            parts.append(f"session {self.session_id}")
        if self.run_id:
            parts.append(f"run {self.run_id[:8]}")
        parts.append(f"{now - self.started:.1f} s")
        parts.append(f"{self.chunks} {noun(self.chunks, 'chunk')}")
        if self.tool_calls:
            parts.append(f"{self.tool_calls} {noun(self.tool_calls, 'tool call')}")
        if self.usage is not None:
            parts.append(str(self.usage))
        if self.cached:
            parts.append("from session_state")
        if self.step is not None and state == "running":
            served = " (served from the record)" if self.step_served else ""
            parts.append(f"step {self.step}{served}")
        if self.steps_run or self.steps_served:
            parts.append(f"steps: {self.steps_run} run, {self.steps_served} served")
        if self.question is not None and state == "waiting":
            parts.append(f"asks {clip(self.question.text, 80)!r}")
        return " · ".join(parts)


def is_paused(response: Any) -> TypeGuard[RunResponse]:
    """Whether ``response`` is a run's RunPaused response: it asked a question and waits."""
    return (isinstance(response, RunResponse) and response.event == RunEvent.run_paused.value
            and response.question is not None)


def how_to_answer(question: Question, session_id: str | None) -> str:
    """How to answer a waiting run without its form: in Python, or with the CLI."""
    options = question.options
    example = options[0] if options else question.default
    choices = (f"one of {', '.join(repr(option) for option in options)}" if options
               else "any text")
    python = f"workflow.resume({'ANSWER' if example is None else repr(example)})"
    shown = str(example) if example is not None and str(example).isprintable() else "ANSWER"
    shell = f"wfnb answer {shlex.quote(session_id or 'SESSION')} {shlex.quote(shown)}"
    return (f"Answer it ({choices}) with {python}; or in a shell, {shell} (with --db and "
            "--table naming this storage), then run the workflow again with the same input.")


class View(Protocol):
    """Where a stream is shown."""

    def add(self, text: str) -> None: ...

    def think(self, text: str) -> None: ...

    def call(self, call: ToolCall) -> None: ...

    def tick(self) -> None: ...

    def status(self) -> None: ...

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
        remote_images: bool = False,
    ) -> None:
        self.info, self._publish, self._clock = info, publish, clock
        self._remote_images = remote_images  # else images from other hosts render as links
        self._interval = 1.0 / refresh_rate if refresh_rate > 0 else 0.0
        prefix = f"wfnb-{uuid.uuid4().hex[:12]}"
        self._ids = (f"{prefix}-{n}" for n in itertools.count())
        info.started = clock()
        self._pending: list[str] = []
        self._tail = ""
        self._unshown = False  # the tail holds text the live placeholder does not show yet
        self._freeze_chars = freeze_chars
        self._splitter = BlockSplitter(freeze_chars)
        self._joint: Joint | None = None  # how the tail continues the last frozen piece
        self._live = False  # the placeholder shows something (to empty before it is replaced)
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

    def status(self) -> None:
        """The status line changed (a step began): show it with the next refresh."""
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
        self._tail, self._joint = "", None  # the answer resumes as a text of its own
        self._splitter = BlockSplitter(self._freeze_chars)

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
        self._live = True

    def _absorb(self) -> bool:
        """Move arrived chunks into the tail and freeze every finished piece; True if any.

        Where pieces end is decided by the content alone (``BlockSplitter``), never by the
        timing, so a re-run saves the same outputs (what nbval compares).
        """
        self._tail += "".join(self._pending)
        self._pending.clear()
        cuts = self._splitter.feed(self._tail)
        if not cuts:
            return False
        start = 0
        for cut in cuts:  # one placeholder per piece, however many pieces a tick freezes
            self._replace_placeholder(self._tail[start : cut.position], cut.joint)
            self._joint, start = cut.joint, cut.position
            self._placeholder = self._show(_EMPTY)
        self._tail = self._tail[start:]
        self._splitter.drop(start)
        return True

    def _replace_placeholder(self, final_text: str, joint: Joint | None = None) -> None:
        """Empty the live placeholder (if it shows anything) and show ``final_text`` after it,
        once, for good (``joint``: how its last block continues in the next piece)."""
        if self._live:
            self._publish(_EMPTY, self._placeholder, True)
            self._live = False
        if final_text:
            self._show(markdown_bundle(final_text, self._joint, joint,
                                       remote_images=self._remote_images))

    def _live_bundle(self, now: float) -> Data:
        status = escape(self.info.line("running", now))
        html = piece_html(self._tail, self._joint, remote_images=self._remote_images)
        return {
            "text/html": f"{self._aside.live_html()}{html}"
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


def markdown_bundle(
    text: str, before: Joint | None = None, after: Joint | None = None, *,
    remote_images: bool = False,
) -> Data:
    """A finished piece of Markdown as a display bundle: safe HTML, and the text itself
    (``before``/``after``: how it continues the previous piece and into the next)."""
    gapless = " style='margin-bottom:0'" if after else ""
    html = piece_html(text, before, after, remote_images=remote_images)
    return {"text/html": f"<div class='wfnb-md'{gapless}>{html}</div>", "text/plain": text}


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

    def status(self) -> None:
        """Nothing to do: the status line is written at the end."""

    def finish(self, state: str) -> None:
        """The status line; for a run that waits, its question and how to answer it."""
        self._end_aside()
        newline = "" if self._ends_with_newline else "\n"
        self._write(f"{newline}[{self.info.line(state, self._clock())}]\n")
        question = self.info.question
        if state == "waiting" and question is not None:  # repr(): no control characters
            self._write(f"The run waits for an answer to {question.text!r}.\n"
                        f"{how_to_answer(question, self.info.session_id)}\n")

    def _end_aside(self) -> None:
        """After reasoning or tool calls, before the answer resumes: the calls, one a line."""
        if not (self._thinking or self._calls):
            return
        lines = "".join(f"[tool call: {call.summary()}]\n" for call in self._calls)
        self._write(("" if self._ends_with_newline else "\n") + lines + "\n")
        self._thinking, self._calls = False, []

    def _write(self, text: str) -> None:
        if text:  # from a model or a database: escapes written out, never acted on
            sys.stdout.write(visible(text, layout=True))
            sys.stdout.flush()
            self._ends_with_newline = text.endswith("\n")
