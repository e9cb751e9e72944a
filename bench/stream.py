"""Live streaming cost: what wfnb's LiveView publishes and spends for a long answer, per shape.

A ~200 KB Markdown answer arrives as 20,000 chunks over a simulated 10 s (a fake clock advances
0.5 ms per chunk, so only CPU time is spent), in five shapes: paragraphs (with a few short lists,
code blocks and tables, as chat answers go), one fenced code block, one bullet list, one table,
and one paragraph with no line breaks. For each it prints:

- published / answer: every byte LiveView sends to the frontend (display messages as JSON), as
  a ratio to the answer's size (target <= 4x);
- published / saved: the same, as a ratio to the outputs the saved notebook keeps at the end;
- largest refresh: the biggest single message, which stays bounded however long the answer;
- wfnb CPU per chunk: LiveView's CPU time minus plain consumption of the same chunks (appending
  them to a list and joining it), over the chunk count, medians of round-robin runs (target
  <= 20 us); and, for scale, rendering the final answer once with markdown-it, per chunk.

The naive way (one output, re-rendered and re-sent whole at every refresh) is measured on the
paragraph shape only: on a long list or table it takes minutes. Run: ``make bench-stream``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from wfnb.notebook._live import Data, LiveView, RunInfo, markdown_bundle
from wfnb.notebook._markdown import to_html

TARGET_BYTES = 200_000
CHUNKS = 20_000
SECONDS = 10.0
REFRESH_RATE = 10.0
WORDS = ["state", "session", "workflow", "token", "model", "cache", "notebook", "<tag>",
         "`code`", "**bold**", "value", "stream"]


def paragraphs(rng: random.Random) -> str:
    """Paragraphs, with short lists, code blocks with '<' and a table now and then."""
    blocks: list[str] = []
    size = 0
    while size < TARGET_BYTES:
        kind = rng.random()
        if kind < 0.6:
            block = " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 120))) + "."
        elif kind < 0.8:
            block = "\n".join(f"- item {n}: {rng.choice(WORDS)}" for n in range(rng.randint(3, 8)))
        elif kind < 0.95:
            block = "```python\n" + "\n".join(
                f"if a < {n}: b = {n}" for n in range(rng.randint(3, 12))
            ) + "\n```"
        else:
            block = "| a | b |\n|---|---|\n" + "\n".join(f"| {n} | {n * n} |" for n in range(5))
        blocks.append(block)
        size += len(block) + 2
    return "\n\n".join(blocks)


def words(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))


def grow(head: str, line: Callable[[int], str], tail: str = "") -> str:
    """``head``, then ``line(n)`` for n = 0, 1, ... until the answer is about TARGET_BYTES."""
    lines, size, n = [head], len(head), 0
    while size < TARGET_BYTES:
        lines.append(line(n))
        size += len(lines[-1])
        n += 1
    return "".join(lines) + tail


def code_block(rng: random.Random) -> str:
    return grow("Here is the module:\n\n```python\n",
                lambda n: f"    if value < {n}:  # {words(rng, 1, 6)}\n        total += {n}\n",
                "```\n")


def bullet_list(rng: random.Random) -> str:
    return grow("The items:\n\n", lambda n: f"- item {n}: {words(rng, 3, 12)}\n")


def table(rng: random.Random) -> str:
    return grow("| # | name | value | note |\n| --- | --- | ---: | --- |\n",
                lambda n: f"| {n} | {rng.choice(WORDS)} | {n * 7 % 1000} | {words(rng, 1, 5)} |\n")


def one_paragraph(rng: random.Random) -> str:
    """Sentences, no line break at all."""
    return grow("", lambda n: f"Sentence {n} says {words(rng, 6, 20)}. ")


SHAPES: dict[str, Callable[[random.Random], str]] = {
    "paragraphs": paragraphs,
    "one fenced code block": code_block,
    "one bullet list": bullet_list,
    "one table": table,
    "one paragraph, no line breaks": one_paragraph,
}


def split(text: str, pieces: int) -> list[str]:
    step = max(1, len(text) // pieces)
    return [text[i : i + step] for i in range(0, len(text), step)]


class FakeClock:
    """Simulated time, moved forward by the driver one chunk's share at a time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Run:
    published: int  # bytes of every message
    saved: int  # bytes of the outputs as the notebook keeps them (the last message per output)
    largest: int  # bytes of the biggest message
    cpu: float  # seconds


def run_view(make_view: Callable[[Callable[[Data, str, bool], None], FakeClock], object],
             chunks: list[str]) -> Run:
    published = largest = 0
    outputs: dict[str, int] = {}

    def publish(data: Data, display_id: str, update: bool) -> None:
        nonlocal published, largest
        size = len(orjson.dumps(data))
        published += size
        largest = max(largest, size)
        outputs[display_id] = size

    clock = FakeClock()
    step = SECONDS / len(chunks)
    started = time.process_time()
    view = make_view(publish, clock)
    for chunk in chunks:
        clock.now += step
        view.add(chunk)  # type: ignore[attr-defined]
    view.finish("done")  # type: ignore[attr-defined]
    return Run(published, sum(outputs.values()), largest, time.process_time() - started)


def plain(chunks: list[str]) -> float:
    """CPU time of consuming the chunks without showing them: the floor."""
    started = time.process_time()
    parts: list[str] = []
    for chunk in chunks:
        parts.append(chunk)
    "".join(parts)
    return time.process_time() - started


def render_once(text: str) -> float:
    started = time.process_time()
    to_html(text)
    return time.process_time() - started


def live_view(publish: Callable[[Data, str, bool], None], clock: FakeClock) -> LiveView:
    return LiveView(RunInfo(), publish, refresh_rate=REFRESH_RATE, clock=clock)


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


def size(count: float) -> str:
    return f"{count / 1000:.1f} KB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="round-robin runs (medians)")
    args = parser.parse_args()

    answers = {name: make(random.Random(7)) for name, make in SHAPES.items()}
    chunked = {name: split(text, CHUNKS) for name, text in answers.items()}
    runs: dict[str, list[Run]] = {name: [] for name in answers}
    floors: dict[str, list[float]] = {name: [] for name in answers}
    once: dict[str, list[float]] = {name: [] for name in answers}
    for _ in range(args.repeat):  # round-robin: every contender in every round
        for name, chunks in chunked.items():
            floors[name].append(plain(chunks))
            runs[name].append(run_view(live_view, chunks))
            once[name].append(render_once(answers[name]))
    naive = run_view(NaiveView, chunked["paragraphs"])

    print(f"# Streaming ~{TARGET_BYTES // 1000} KB as {CHUNKS:,} chunks over {SECONDS:.0f} s "
          f"(simulated), refresh rate {REFRESH_RATE:.0f}/s, {args.repeat} round-robin runs\n")
    print("| shape | answer | published / answer | published / saved | largest refresh "
          "| wfnb CPU per chunk | render once, per chunk |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    verdicts = []
    for name, text in answers.items():
        answer = len(text.encode())
        last = runs[name][-1]
        count = len(chunked[name])
        cpu = statistics.median(r.cpu for r in runs[name]) - statistics.median(floors[name])
        per_chunk = cpu / count * 1e6
        ratio = last.published / answer
        print(f"| {name} | {size(answer)} | {ratio:.2f}x | {last.published / last.saved:.2f}x "
              f"| {size(last.largest)} | {per_chunk:.1f} µs "
              f"| {statistics.median(once[name]) / count * 1e6:.1f} µs |")
        verdicts.append((name, ratio, per_chunk))
    answer = len(answers["paragraphs"].encode())
    print(f"| paragraphs, naive (whole output re-sent) | {size(answer)} "
          f"| {naive.published / answer:.2f}x | {naive.published / naive.saved:.2f}x "
          f"| {size(naive.largest)} | {naive.cpu / len(chunked['paragraphs']) * 1e6:.1f} µs "
          "(with plain consumption) | |")

    print("\n| target (wfnb LiveView) | measured | verdict |\n| --- | --- | --- |")
    for name, ratio, per_chunk in verdicts:
        for label, value, limit, unit in ((f"{name}: published <= 4x answer", ratio, 4.0, "x"),
                                          (f"{name}: CPU per chunk <= 20 µs", per_chunk, 20.0,
                                           " µs")):
            verdict = "met" if value <= limit else f"**MISSED** ({value / limit - 1:.0%} over)"
            print(f"| {label} | {value:.2f}{unit} | {verdict} |")


if __name__ == "__main__":
    main()
