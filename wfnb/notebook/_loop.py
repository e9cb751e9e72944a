"""The one event loop async runs use: long-lived, in a daemon thread, shared by every run.

The kernel's own loop is busy running the cell, so async sources run elsewhere; always on the
same loop, because async clients (``AsyncOpenAI``, agno's ``arun``) keep connection pools bound
to the loop that first used them, and a loop closed after each run breaks them on the next.
"""

from __future__ import annotations

import asyncio
import os
import threading

_lock = threading.Lock()
_loops: dict[int, asyncio.AbstractEventLoop] = {}  # by process id: a forked child starts its own


def shared_loop() -> asyncio.AbstractEventLoop:
    """The process's background loop, started on first use."""
    with _lock:
        loop = _loops.get(os.getpid())
        if loop is None or loop.is_closed():
            loop = _loops[os.getpid()] = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="wfnb-event-loop", daemon=True).start()
        return loop
