"""Keeping a shown inspector current while other kernels, processes or the CLI write.

Once the panel is displayed, :class:`Poller` asks the storage for its cheap change mark
(``WorkflowStorage.last_change()``: one query, no state read) every ``interval`` seconds, and
calls back only when the mark moved. It runs on the kernel's own event loop, between the
messages the kernel handles, so it never blocks a cell, touches widgets from the thread that
owns them, and waits while a cell runs. It pauses while the frontend says the panel is out of
sight (:meth:`Poller.show`, fed by the small script of _inspector_snapshot.py: scrolled away,
another tab, a hidden browser tab) and checks at once when it is back; a frontend that runs no
script (or says nothing) gets checks until the inspector is closed (or ``interval`` is 0).

``schedule`` is injected (``(delay, callback) -> cancel``) so tests drive it without a kernel.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from wfnb.storage import ChangeMark, WorkflowStorage

INTERVAL = 2.0  # seconds between checks; WorkflowMagics.live_interval or interval= override it
Cancel = Callable[[], None]
Schedule = Callable[[float, Callable[[], object]], Cancel]


def kernel_schedule(delay: float, callback: Callable[[], object]) -> Cancel:
    """Run ``callback`` after ``delay`` seconds on the running event loop (the kernel's).

    Outside a running loop (a plain script) there is no panel to keep current: nothing runs.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return lambda: None
    return loop.call_later(delay, callback).cancel


class Poller:
    """Calls ``on_change()`` when ``storage``'s change mark moves, checking every ``interval``
    seconds from :meth:`start` until :meth:`stop`; a failed check goes to ``on_error``."""

    def __init__(
        self,
        storage: WorkflowStorage,
        on_change: Callable[[], None],
        *,
        interval: float | None = None,
        on_error: Callable[[Exception], None],
        schedule: Schedule = kernel_schedule,
    ) -> None:
        self.interval = INTERVAL if interval is None else interval
        if self.interval < 0:
            raise ValueError(f"the live interval must be 0 (off) or more seconds, not "
                             f"{self.interval}")
        self._storage, self._on_change, self._on_error = storage, on_change, on_error
        self._schedule = schedule
        self._mark: ChangeMark | None = None
        self._cancel: Cancel | None = None
        self.running = False  # started and not stopped (checking, or paused while hidden)
        self.visible = True  # as the frontend last said
        self.checks = 0  # last_change queries made

    def start(self) -> None:
        """Start checking (again); the mark is taken now, so only later writes count."""
        if self.running or self.interval == 0:
            return
        self.running = True
        self._mark = self._storage.last_change()
        self._next(self.interval)

    def stop(self) -> None:
        self.running = False
        self._pause()

    def show(self, visible: bool) -> None:
        """The frontend says whether the panel is in sight: pause the checks while it is not,
        and check at once when it is back (what changed meanwhile shows then)."""
        if visible == self.visible:
            return
        self.visible = visible
        self._pause()
        if visible:
            self._next(0)

    def _next(self, delay: float) -> None:
        if self.running and self.visible and self._cancel is None:
            self._cancel = self._schedule(delay, self.check)

    def _pause(self) -> None:
        if self._cancel is not None:
            self._cancel()
            self._cancel = None

    def check(self) -> bool:
        """One check (the timer's tick): True, after ``on_change()``, when the mark moved.

        A failure goes to ``on_error`` (a timer callback has no caller to raise to), and the
        next tick is scheduled anyway: a database that is briefly away is asked again.
        """
        self._pause()  # the timer's own tick, or one asked for in between
        try:
            self.checks += 1
            mark = self._storage.last_change()
            moved = mark != self._mark
            self._mark = mark
            if moved:
                self._on_change()
            return moved
        except Exception as error:  # reported in the panel, never lost in the loop's log
            self._on_error(error)
            return False
        finally:
            self._next(self.interval)
