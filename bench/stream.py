"""Live streaming cost: what wfnb's LiveView publishes to the frontend for a long answer.

A 200 KB Markdown answer arrives as 20,000 chunks over a simulated 10 s (a fake clock advances
0.5 ms per chunk, so the run takes CPU time only). For wfnb's LiveView (finished blocks frozen
into their own outputs, only the tail live, 10 updates/s) and for the naive approach (one output
re-sent whole at every refresh) it prints: bytes published as a ratio to the final content,
update messages per simulated second, and CPU time per chunk. Run: ``make bench-stream``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from wfnb.notebook._live import Data, LiveView, RunInfo, markdown_bundle

TARGET_BYTES = 200_000
CHUNKS = 20_000
SECONDS = 10.0
REFRESH_RATE = 10.0


def answer(rng: random.Random) -> str:
    """Deterministic Markdown: paragraphs, lists, code blocks with '<', a table now and then."""
    words = ["state", "session", "workflow", "token", "model", "cache", "notebook", "<tag>",
             "`code`", "**bold**", "value", "stream"]
    blocks: list[str] = []
    size = 0
    while size < TARGET_BYTES:
        kind = rng.random()
        if kind < 0.6:
            block = " ".join(rng.choice(words) for _ in range(rng.randint(40, 120))) + "."
        elif kind < 0.8:
            block = "\n".join(f"- item {n}: {rng.choice(words)}" for n in range(rng.randint(3, 8)))
        elif kind < 0.95:
            block = "```python\n" + "\n".join(
                f"if a < {n}: b = {n}" for n in range(rng.randint(3, 12))
            ) + "\n```"
        else:
            block = "| a | b |\n|---|---|\n" + "\n".join(f"| {n} | {n * n} |" for n in range(5))
        blocks.append(block)
        size += len(block) + 2
    return "\n\n".join(blocks)


def split(text: str, pieces: int) -> list[str]:
    step = max(1, len(text) // pieces)
    return [text[i : i + step] for i in range(0, len(text), step)]


@dataclass
class Result:
    name: str
    published: int
    updates: int
    cpu_per_chunk_us: float


class FakeClock:
    """Simulated time: each call to ``advance`` moves it by one chunk's share."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def measure(name: str, make_view: Callable[[Callable[[Data, str, bool], None], FakeClock], object],
            chunks: list[str]) -> Result:
    published = 0
    updates = 0

    def publish(data: Data, display_id: str, update: bool) -> None:
        nonlocal published, updates
        published += len(orjson.dumps(data))
        updates += update

    clock = FakeClock()
    view = make_view(publish, clock)
    step = SECONDS / len(chunks)
    started = time.process_time()
    for chunk in chunks:
        clock.now += step
        view.add(chunk)  # type: ignore[attr-defined]
    view.finish("done")  # type: ignore[attr-defined]
    cpu = time.process_time() - started
    return Result(name, published, updates, cpu / len(chunks) * 1e6)


class NaiveView:
    """The quadratic way: one display, re-sent whole (as rendered Markdown) at every refresh."""

    def __init__(self, publish: Callable[[Data, str, bool], None], clock: FakeClock) -> None:
        self._publish, self._clock = publish, clock
        self._text: list[str] = []
        self._next = 0.0
        publish({"text/plain": ""}, "naive", False)

    def add(self, text: str) -> None:
        self._text.append(text)
        if self._clock() >= self._next:
            self._publish(markdown_bundle("".join(self._text)), "naive", True)
            self._next = self._clock() + 1 / REFRESH_RATE

    def finish(self, state: str) -> None:
        self._publish(markdown_bundle("".join(self._text)), "naive", True)


def main() -> None:
    text = answer(random.Random(7))
    chunks = split(text, CHUNKS)
    size = len(text.encode())
    results = [
        measure("wfnb LiveView",
                lambda publish, clock: LiveView(RunInfo(), publish, refresh_rate=REFRESH_RATE,
                                                clock=clock), chunks),
        measure("naive (whole output re-sent)", NaiveView, chunks),
    ]
    print(f"# Streaming {size / 1000:.0f} KB as {len(chunks):,} chunks over {SECONDS:.0f} s "
          f"(simulated), refresh rate {REFRESH_RATE:.0f}/s\n")
    print("| view | published / content | updates per second | CPU per chunk |")
    print("| --- | --- | --- | --- |")
    for result in results:
        print(f"| {result.name} | {result.published / size:.2f}x | "
              f"{result.updates / SECONDS:.1f} | {result.cpu_per_chunk_us:.1f} µs |")
    live = results[0]
    checks = [
        ("published bytes <= 4x content", live.published / size <= 4),
        (f"updates <= {REFRESH_RATE:.0f}/s", live.updates / SECONDS <= REFRESH_RATE + 0.5),
        ("CPU per chunk <= 20 µs", live.cpu_per_chunk_us <= 20),
    ]
    print("\n| target (wfnb LiveView) | verdict |\n| --- | --- |")
    for label, met in checks:
        print(f"| {label} | {'met' if met else '**MISSED**'} |")


if __name__ == "__main__":
    main()
