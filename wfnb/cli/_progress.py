"""Progress of long exports, imports and prunes: on a terminal only, with tqdm when installed.

Nothing is drawn for the first ``DELAY`` seconds, so short operations stay quiet; without tqdm a
counter line is redrawn in place and wiped at the end.
"""

from __future__ import annotations

import contextlib
import importlib
import time
from collections.abc import Callable, Iterator
from typing import TextIO

DELAY = 0.5  # seconds before anything is drawn
_REDRAW = 0.1  # seconds between two redraws of the counter

Tick = Callable[[], None]


@contextlib.contextmanager
def progress(
    label: str, total: int | None, stream: TextIO, *, unit: str = "sessions", delay: float = DELAY
) -> Iterator[Tick]:
    """A function to call once per item done; draws on ``stream`` only if it is a terminal."""
    if not stream.isatty():
        yield _nothing
        return
    try:
        tqdm = importlib.import_module("tqdm").tqdm
    except ImportError:
        counter = _Counter(label, total, unit, stream, delay)
        try:
            yield counter.tick
        finally:
            counter.close()
        return
    bar = tqdm(total=total, desc=label, unit=f" {unit}", file=stream, delay=delay, leave=False)
    try:
        yield bar.update
    finally:
        bar.close()


def _nothing() -> None:
    pass


class _Counter:
    """``export: 120/400 sessions``, redrawn in place at most every 0.1 s."""

    def __init__(self, label: str, total: int | None, unit: str, stream: TextIO, delay: float):
        self.label, self.total, self.unit, self.stream = label, total, unit, stream
        self.start = time.monotonic() + delay
        self.done = 0
        self.drawn_at = 0.0
        self.width = 0  # of the line drawn last, to wipe it

    def tick(self) -> None:
        self.done += 1
        now = time.monotonic()
        if now >= self.start and (now - self.drawn_at >= _REDRAW or self.done == self.total):
            of = f"/{self.total}" if self.total is not None else ""
            text = f"{self.label}: {self.done}{of} {self.unit}"
            self.stream.write("\r" + text.ljust(self.width))
            self.stream.flush()
            self.width, self.drawn_at = len(text), now

    def close(self) -> None:
        if self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
