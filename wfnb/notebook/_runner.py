"""Consuming what a workflow returns (a response, an iterable or an async iterable) into a view.

Async sources run on a private event loop in a worker thread, since the kernel's own loop is
already running; chunks cross to the cell's thread through a queue and are rendered there.
"""

from __future__ import annotations

import asyncio
import inspect
import queue
import threading
import time
from collections.abc import AsyncIterable, Awaitable, Generator, Iterable, Iterator
from typing import Any

from wfnb._events import RunEvent, RunResponse
from wfnb._steps import StepEvent, observe_steps
from wfnb.notebook import _frontend
from wfnb.notebook._chunks import chunk_text, is_completion
from wfnb.notebook._live import LiveView, RunInfo, TextView, View

_DONE = object()


def show(
    source: Any,
    *,
    refresh_rate: float = 10.0,
    freeze_chars: int = 2000,
    info: RunInfo | None = None,
) -> RunResponse:
    """Show a run, or any chunk source, where this process displays; return the whole text.

    In a notebook: live Markdown (see _live.py); in terminal IPython or plain Python: the text as
    it comes, then a status line. ``wfnb.show(workflow.run(topic="pasta"))`` is what
    ``%workflow`` does, without IPython.
    """
    info = info if info is not None else RunInfo()
    view: View
    if _frontend.is_rich(_frontend.detect()):
        view = LiveView(info, refresh_rate=refresh_rate, freeze_chars=freeze_chars)
    else:
        view = TextView(info)
    return consume(source, view, info, poll=1.0 / max(refresh_rate, 1.0))


def consume(source: Any, view: View, info: RunInfo, *, poll: float = 0.1) -> RunResponse:
    """Show every chunk of ``source`` in ``view``; the whole text as one RunResponse.

    On an error the view shows what arrived and a failed status, then the error propagates;
    on KeyboardInterrupt the same with an interrupted status (the source is closed, so a
    workflow records the run as interrupted).
    """
    texts: list[str] = []
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

    try:
        with observe_steps(on_step):
            for chunk in chunks:
                if chunk is _DONE:
                    if step_changed:
                        step_changed = False
                        view.status()
                    view.tick()
                    continue
                _note(info, chunk, bool(texts))
                text = chunk_text(chunk)
                if text:
                    texts.append(text)
                    info.chunks += 1
                    view.add(text)
    except KeyboardInterrupt:
        view.finish("interrupted")
        raise
    except BaseException:
        view.finish("failed")
        raise
    finally:
        chunks.close()
    view.finish("done")
    return RunResponse(
        content="".join(texts), event=RunEvent.workflow_completed, run_id=info.run_id,
        session_id=info.session_id, workflow_name=info.workflow,
    )


def _note(info: RunInfo, chunk: Any, had_text: bool) -> None:
    """Pick run ids out of RunResponses; a completion event with text first means cached."""
    if isinstance(chunk, RunResponse):
        info.run_id = chunk.run_id or info.run_id
        info.session_id = chunk.session_id or info.session_id
        info.workflow = chunk.workflow_name or info.workflow
        if is_completion(chunk) and chunk.content and not had_text:
            info.cached = True


def _iterate(source: Any, poll: float) -> Generator[Any, None, None]:
    """Chunks of any source; for async ones, ``_DONE`` markers while waiting ``poll`` seconds."""
    if isinstance(source, (AsyncIterable, Awaitable)):
        return _from_async(source, poll)
    if isinstance(source, (str, RunResponse)) or not isinstance(source, Iterable):
        return _closing(iter([source]))
    return _closing(iter(source))


def _closing(chunks: Iterator[Any]) -> Generator[Any, None, None]:
    try:
        yield from chunks
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def _from_async(
    source: AsyncIterable[Any] | Awaitable[Any], poll: float
) -> Generator[Any, None, None]:
    """Drive an async source on a worker thread's own loop; yield its chunks here."""
    handoff: queue.Queue[tuple[str, Any]] = queue.Queue()
    loop = asyncio.new_event_loop()
    task: asyncio.Task[None] | None = None

    async def pump() -> None:
        try:
            if inspect.isawaitable(source):
                handoff.put(("chunk", await source))
            else:
                async for chunk in source:
                    handoff.put(("chunk", chunk))
        except BaseException as error:  # forwarded to the cell's thread, raised there
            handoff.put(("error", error))
        else:
            handoff.put(("end", None))

    def run() -> None:
        nonlocal task
        asyncio.set_event_loop(loop)
        task = loop.create_task(pump())
        try:
            loop.run_until_complete(task)
        except asyncio.CancelledError:
            pass
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    worker = threading.Thread(target=run, name="wfnb-async-run", daemon=True)
    worker.start()
    finished = False
    try:
        while True:
            try:
                kind, value = handoff.get(timeout=poll)
            except queue.Empty:
                yield _DONE
                continue
            if kind == "end":
                finished = True
                return
            if kind == "error":
                finished = True
                raise value
            yield value
    finally:
        if not finished:
            _cancel(loop, lambda: task)
        worker.join()


def _cancel(loop: asyncio.AbstractEventLoop, task: Any) -> None:
    """Cancel the worker's task (the run sees CancelledError and is recorded interrupted)."""
    deadline = time.monotonic() + 5
    while task() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    current = task()
    if current is not None and not loop.is_closed():
        loop.call_soon_threadsafe(current.cancel)
