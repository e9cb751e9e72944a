"""Consuming what a workflow returns (a response, an iterable or an async iterable) into a view.

Every chunk goes through the runtime's chunk adapters (wfnb/_chunks.py), so text, reasoning,
tool calls and usage mean the same here as in ``Workflow.run``. Async sources (async iterables,
coroutines and awaitables resolving to one or to an answer, async context managers) run on the
process's shared background loop (_loop.py); chunks cross to the cell's thread through a queue
and are rendered there.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import queue
import threading
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from wfnb._chunks import Collector, is_single
from wfnb._events import COMPLETION_EVENTS, RunEvent, RunResponse
from wfnb._steps import StepEvent, observe_steps
from wfnb.notebook import _frontend
from wfnb.notebook._live import LiveView, RunInfo, TextView, View, is_paused
from wfnb.notebook._loop import shared_loop

_TICK = object()  # yielded by async sources while they are idle
_CANCEL_WAIT = 5.0  # seconds an interrupted async source gets to record how it ended


def show(
    source: Any,
    *,
    refresh_rate: float = 10.0,
    freeze_chars: int = 2000,
    info: RunInfo | None = None,
    remote_images: bool = False,
) -> RunResponse:
    """Show a run, a model client's stream or answer, or any chunk source, where this process
    displays; return it all as one RunResponse (text, reasoning, tool calls, usage).

    In a notebook: live Markdown, reasoning and tool calls apart (see _live.py); in terminal
    IPython or plain Python: the text as it comes, then a status line.
    ``wfnb.show(workflow.run(topic="pasta"))`` or ``wfnb.show(client.chat.completions.create(...,
    stream=True))`` is what ``%workflow`` does, without IPython. Images from other hosts render
    as links, not fetched, unless ``remote_images``. A run that asks a question returns its
    RunPaused response; a notebook shows a form under it that answers and continues the run
    (_ask.py), a terminal says how to answer.
    """
    info = info if info is not None else RunInfo()
    poll = 1.0 / max(refresh_rate, 1.0)
    rich = _frontend.is_rich(_frontend.detect())
    view: View
    if rich:
        view = LiveView(info, refresh_rate=refresh_rate, freeze_chars=freeze_chars,
                        remote_images=remote_images)
    else:
        view = TextView(info)
    response = consume(source, view, info, poll=poll)
    if rich and is_paused(response) and response.resume is not None:
        _offer_form(response, info.text_before, poll, refresh_rate=refresh_rate,
                    freeze_chars=freeze_chars, remote_images=remote_images)
    return response


def _offer_form(paused: RunResponse, shown: str, poll: float, **view_options: Any) -> None:
    """Show the form that answers a paused run and streams the rest of it, below ``shown``
    (imports ipywidgets only now: see _ask.py)."""
    from IPython.display import display

    from wfnb.notebook._ask import AskForm

    form = AskForm(paused, functools.partial(consume, poll=poll), shown=shown, **view_options)
    display(form)  # type: ignore[no-untyped-call]


def consume(source: Any, view: View, info: RunInfo, *, poll: float = 0.1) -> RunResponse:
    """Show every chunk of ``source`` in ``view``; everything it carried as one RunResponse.

    On an error the view shows what arrived and a failed status, then the error propagates;
    on KeyboardInterrupt the same with an interrupted status (the source is closed, so a
    workflow records the run as interrupted). A run that asked a question ends ``waiting``:
    its RunPaused response (``.question``, ``.resume(answer)``) is returned as it is.
    """
    collected = Collector()
    chunks = _iterate(source, poll)
    here = threading.get_ident()
    step_changed = False

    def on_step(event: StepEvent) -> None:
        """Name the current step in the status line (from this thread, or at the next poll)."""
        nonlocal step_changed
        if event.state in ("running", "served"):
            info.session_id = info.session_id or event.session_id
            info.workflow = info.workflow or event.workflow_name
            info.step, info.step_served = event.name, event.state == "served"
            if event.state == "served":
                info.steps_served += 1
            else:
                info.steps_run += 1
            if threading.get_ident() == here:
                view.status()
            else:  # an async run's worker thread: the display is this thread's
                step_changed = True

    paused: RunResponse | None = None
    try:
        with observe_steps(on_step):
            for chunk in chunks:
                if chunk is _TICK:
                    if step_changed:
                        step_changed = False
                        view.status()
                    view.tick()
                    continue
                _note(info, chunk, bool(collected.texts))
                if is_paused(chunk):  # the run's last response: its content is the question
                    paused = chunk
                    continue
                _render(chunk, collected, view, info)
    except KeyboardInterrupt:
        view.finish("interrupted")
        raise
    except BaseException:
        view.finish("failed")
        raise
    finally:
        chunks.close()
    if paused is not None:
        info.question, info.text_before = paused.question, "".join(collected.texts)
        view.finish("waiting")
        return paused
    view.finish("done")
    return collected.response(
        event=RunEvent.workflow_completed, run_id=info.run_id, session_id=info.session_id,
        workflow_name=info.workflow,
    )


def _render(chunk: Any, collected: Collector, view: View, info: RunInfo) -> None:
    """Show one chunk: its reasoning, the tool calls it touched, its text."""
    piece, calls = collected.take(chunk)
    info.usage, info.tool_calls = collected.usage, len(collected.calls)
    if piece.reasoning:
        view.think(piece.reasoning)
    for call in calls:
        view.call(call)
    if piece.text:
        info.chunks += 1
        view.add(piece.text)


def _note(info: RunInfo, chunk: Any, had_text: bool) -> None:
    """Pick run ids out of RunResponses; a completion event with text first means cached."""
    if isinstance(chunk, RunResponse):
        info.run_id = chunk.run_id or info.run_id
        info.session_id = chunk.session_id or info.session_id
        info.workflow = chunk.workflow_name or info.workflow
        if chunk.event in COMPLETION_EVENTS and chunk.content and not had_text:
            info.cached = True


@dataclass(frozen=True)
class Deferred:
    """A source made only once the view shows (``%workflow EXPR`` evaluates EXPR there), so an
    error making it (an HTTP error before a stream starts) fails like one inside the stream."""

    make: Callable[[], Any]


def _iterate(source: Any, poll: float) -> Generator[Any, None, None]:
    """Chunks of any source; for async ones, ``_TICK`` markers while waiting ``poll`` seconds."""
    if isinstance(source, Deferred):
        return _made(source, poll)
    if isinstance(source, (AsyncIterable, Awaitable)) or _is_async_manager(source):
        _refuse_opened_elsewhere(source)
        return _from_async(source, poll)
    if _is_manager(source) and not isinstance(source, Iterable):
        return _managed(source)  # e.g. client.chat.completions.stream(...) / messages.stream()
    if is_single(source):
        return _closing(iter([source]))
    return _closing(iter(source))


def _made(source: Deferred, poll: float) -> Generator[Any, None, None]:
    yield from _iterate(source.make(), poll)


def _is_manager(source: Any) -> bool:
    return hasattr(source, "__enter__") and hasattr(source, "__exit__")


def _is_async_manager(source: Any) -> bool:
    return (hasattr(source, "__aenter__") and hasattr(source, "__aexit__")
            and not isinstance(source, AsyncIterable))


def _managed(manager: Any) -> Generator[Any, None, None]:
    with manager as entered:
        yield from _iterate(entered, 0.1)


def _closing(chunks: Iterator[Any]) -> Generator[Any, None, None]:
    try:
        yield from chunks
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def _from_async(source: Any, poll: float) -> Generator[Any, None, None]:
    """Drive an async source on the shared loop; yield its chunks here.

    An awaitable is awaited first: what it resolves to is streamed if it is an async iterable
    (``await client.chat.completions.create(stream=True)``), else shown here as an answer.
    """
    handoff: queue.Queue[tuple[str, Any]] = queue.Queue()

    async def pump() -> None:
        try:
            value = source
            while inspect.isawaitable(value) and not isinstance(value, AsyncIterable):
                value = await value
            if _is_async_manager(value):
                async with value as entered:
                    await _forward(entered, handoff)
            elif isinstance(value, AsyncIterable):
                await _forward(value, handoff)
            else:
                handoff.put(("value", value))
                return
        except BaseException as error:  # forwarded to the cell's thread, raised there
            handoff.put(("error", _explained(error)))
        else:
            handoff.put(("end", None))

    future = asyncio.run_coroutine_threadsafe(pump(), shared_loop())
    ended = False
    try:
        while True:
            try:
                kind, value = handoff.get(timeout=poll)
            except queue.Empty:
                yield _TICK
                continue
            if kind == "chunk":
                yield value
                continue
            ended = True
            if kind == "error":
                raise value
            if kind == "value":
                yield from _iterate(value, poll)
            return
    finally:
        if not ended:
            future.cancel()  # the run sees CancelledError and is recorded interrupted
            _wait_for_end(handoff)


async def _forward(chunks: AsyncIterable[Any], handoff: queue.Queue[tuple[str, Any]]) -> None:
    async for chunk in chunks:
        handoff.put(("chunk", chunk))


def _wait_for_end(handoff: queue.Queue[tuple[str, Any]]) -> None:
    """Let a cancelled source finish (and record how its run ended), for a few seconds at most."""
    deadline = time.monotonic() + _CANCEL_WAIT
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            kind, _ = handoff.get(timeout=remaining)
        except queue.Empty:
            return
        if kind != "chunk":
            return


_INSTEAD = (
    "pass the call itself, without await (`%workflow client.chat.completions.create(..., "
    "stream=True)`), or an `async def` that makes and iterates the stream, with a client that "
    "top-level `await`s in cells have not used: wfnb runs those on one event loop of its own, "
    "run after run"
)


def _refuse_opened_elsewhere(source: Any) -> None:
    """Refuse a client's async stream opened before it got here: by a top-level ``await`` in a
    cell, so on the notebook's own loop, which is busy running this cell."""
    if hasattr(getattr(source, "response", None), "aiter_bytes"):  # an open httpx response
        raise RuntimeError(
            f"cannot stream this {type(source).__name__}: it was opened on the notebook's own "
            f"event loop (by `await` in a cell), which is busy running this cell; {_INSTEAD}"
        )


def _explained(error: BaseException) -> BaseException:
    """An error from using, on wfnb's loop, an async object bound to the notebook's own loop."""
    if isinstance(error, RuntimeError) and any(
        words in str(error)
        for words in ("different loop", "different event loop", "Event loop is closed")
    ):
        refused = RuntimeError(
            "this async stream or its client belongs to another event loop (the notebook's own, "
            "if a top-level `await` in a cell used it first, or one `asyncio.run` closed): "
            f"{_INSTEAD}"
        )
        refused.__cause__ = error
        return refused
    return error
