"""Steps benchmark: what a served ``@step`` call, a recorded one and a replayed run cost, next to
raw sqlite3, wfnb's own load and save, and LangGraph's node cache on SQLite.

Run with ``python bench/steps.py`` (in the venv; LangGraph from the ``bench`` extra). One SQLite
file per store, the settings wfnb uses (WAL, ``synchronous=NORMAL``). Contenders take turns
round-robin, the first rotating each iteration, and medians are reported, so machine noise hits
all of them alike. Every step output and state is ~1 KB of text.

- raw sqlite3 load: SELECT one row + ``json.loads`` (the floor of bench/storage.py);
- wfnb load / save: ``storage.read(session_id)`` / ``write_to_storage()`` of a changed state;
- step hit: one ``@step`` method call inside a running run (a generator run, suspended at a
  yield), served from its record: key, lookup, decode;
- step executed: the same with a new argument each time: lookup (a miss), the ``running`` record,
  the body, the ``completed`` record with its output;
- recording a completed step: those two records alone (``StepLog.begin`` and ``finish`` with the
  ~1 KB output encoded by the codec), what recording adds to a call that executes;
- run with one served step / LangGraph cached node: a whole run of a workflow whose one step is
  served (load state, record the run, serve, record the served call, end) against
  ``graph.invoke`` of a one-node LangGraph graph whose node has a ``CachePolicy`` and is served
  from ``SqliteCache`` (no checkpointer);
- 100-step replay: a whole run of 100 step calls, every one served.
"""

from __future__ import annotations

import itertools
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from storage import (
    NOISE,
    RawSqlite,
    Target,
    human_ns,
    markdown_table,
    rotated,
    targets_table,
    text,
    timed,
)

import wfnb
from wfnb import Workflow, step
from wfnb.storage import StepCall, encode_output

ITERATIONS = 400
REPLAY_ITERATIONS = 40
WARMUP = 10
REPLAY_STEPS = 100
SEED = 20261202
rng = random.Random(SEED)
OUTPUT = text(rng, 1000)  # ~1 KB
assert 900 < len(OUTPUT.encode()) < 1200


class Served(Workflow):
    """A run that stays open (suspended at its yield) while the bench calls ``fetch``."""

    @step
    def fetch(self, query: str) -> dict[str, str]:
        return {"query": query, "text": OUTPUT}

    def run(self) -> Iterator[None]:
        while True:
            yield None


class OneStep(Workflow):
    @step
    def fetch(self, query: str) -> dict[str, str]:
        return {"query": query, "text": OUTPUT}

    def run(self, query: str) -> str:
        return self.fetch(query)["text"][:10]


class Replay(Workflow):
    @step
    def part(self, index: int) -> dict[str, Any]:
        return {"index": index, "text": OUTPUT[: 1 + index % 50]}

    def run(self) -> int:
        return sum(self.part(index)["index"] for index in range(REPLAY_STEPS))


class StateSaver:
    """wfnb's own save and load of a ~1 KB session_state."""

    def __init__(self, storage: wfnb.WorkflowStorage) -> None:
        self.storage = storage
        self.workflow = OneStep(session_id="state", storage=storage)
        self.workflow.session_state.update({"text": OUTPUT, "n": 0})
        self.workflow.write_to_storage()

    def save(self) -> None:
        self.workflow.session_state["n"] += 1
        self.workflow.write_to_storage()

    def load(self) -> None:
        self.storage.read("state")


def langgraph_invoke(folder: Path) -> Callable[[], object] | str:
    """``graph.invoke`` of a one-node graph whose node is served from SqliteCache, or why not."""
    try:
        from typing import TypedDict

        from langgraph.cache.sqlite import SqliteCache
        from langgraph.graph import END, START, StateGraph
        from langgraph.types import CachePolicy
    except ImportError as exc:
        return f"not installed: {exc.name}"

    class GraphState(TypedDict, total=False):
        query: str
        text: str

    def fetch(state: GraphState) -> GraphState:
        return {"text": OUTPUT}

    builder = StateGraph(GraphState)
    builder.add_node("fetch", fetch, cache_policy=CachePolicy())
    builder.add_edge(START, "fetch")
    builder.add_edge("fetch", END)
    cache: Any = SqliteCache(path=str(folder / "langgraph-cache.db"))
    cache._conn.execute("PRAGMA synchronous=NORMAL")  # the settings the others run with
    graph = builder.compile(cache=cache)
    graph.invoke({"query": "pasta"})  # fills the cache
    return lambda: graph.invoke({"query": "pasta"})


@dataclass
class Race:
    """Contenders timed round-robin; medians in nanoseconds."""

    contenders: dict[str, Callable[[], object]]

    def run(self, iterations: int) -> dict[str, float]:
        names = list(self.contenders)
        times: dict[str, list[int]] = {name: [] for name in names}
        for i in range(WARMUP + iterations):
            for name in rotated(names, i):
                elapsed = timed(self.contenders[name])
                if i >= WARMUP:
                    times[name].append(elapsed)
        return {name: statistics.median(values) for name, values in times.items()}


def versions() -> str:
    found = []
    for name in ("wfnb", "SQLAlchemy", "orjson", "langgraph", "langgraph-checkpoint-sqlite"):
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, " + ", ".join(found)


def at_most(goal: str, mine: float, limit: float, measured: str) -> Target:
    """Met when ``mine <= limit``; a tie (noise) when within NOISE of it."""
    return Target(goal, measured, mine <= limit, tie=abs(mine / limit - 1) < NOISE)


def measure(folder: Path) -> tuple[dict[str, float], float, str | None]:
    """Medians per operation (ns), the replay's median (ms), and why LangGraph is missing."""
    raw = RawSqlite(folder / "raw.db", "s", {"text": OUTPUT, "n": 0})
    raw.save()
    storage = wfnb.SqliteWorkflowStorage("bench", folder / "wfnb.db")
    state = StateSaver(storage)
    hits = Served(session_id="hits", storage=storage)
    hit_run = hits.run()
    next(hit_run)  # the run is open now
    hits.fetch("pasta")  # executed once: every call after this is served
    fresh = (f"query {n}" for n in range(10**9))
    records = Served(session_id="records", storage=storage)
    record_run = records.run()
    next(record_run)
    numbers = itertools.count()

    def record() -> None:
        call = StepCall(f"bench-{next(numbers)}", "records", "Served", "bench", "k", "fetch")
        storage.step_log.begin(call)
        output, tagged = encode_output("fetch", {"output": {"query": "q", "text": OUTPUT}})
        storage.step_log.finish(call, output=output, tagged=tagged)

    one = OneStep(session_id="one", storage=storage)
    one.run("pasta")
    replay = Replay(session_id="replay", storage=storage)
    replay.run()
    invoke = langgraph_invoke(folder)
    contenders: dict[str, Callable[[], object]] = {
        "raw sqlite3 load": raw.load,
        "wfnb load": state.load,
        "wfnb save": state.save,
        "step hit": lambda: hits.fetch("pasta"),
        "step executed": lambda: records.fetch(next(fresh)),
        "recording a completed step": record,
        "run with one served step": lambda: one.run("pasta"),
    }
    if not isinstance(invoke, str):
        contenders["LangGraph cached node (invoke)"] = invoke
    medians = Race(contenders).run(ITERATIONS)
    replay_ms = Race({"replay": replay.run}).run(REPLAY_ITERATIONS)["replay"] / 1e6
    hit_run.close()  # type: ignore[attr-defined]
    record_run.close()  # type: ignore[attr-defined]
    served = sum(r.cached for r in storage.steps("hits"))
    executed = sum(not r.cached and r.run_id != "bench" for r in storage.steps("records"))
    assert served >= ITERATIONS and executed >= ITERATIONS, (served, executed)
    assert all(r.cached for r in storage.steps("replay")[REPLAY_STEPS:])
    storage.close()
    raw.close()
    return medians, replay_ms, invoke if isinstance(invoke, str) else None


def targets(medians: dict[str, float], replay_ms: float, missing: str | None) -> list[Target]:
    floor, hit, recorded = medians["raw sqlite3 load"], medians["step hit"], medians[
        "recording a completed step"
    ]
    load, save = medians["wfnb load"], medians["wfnb save"]
    found = [
        at_most("step hit <= one wfnb load", hit, load, f"{hit / load:.2f} loads"),
        at_most("step hit about 4x raw sqlite3 load (<= 4x)", hit, 4 * floor,
                f"{hit / floor:.2f}x"),
        at_most("recording a completed step <= one wfnb save", recorded, save,
                f"{recorded / save:.2f} saves"),
        at_most("100-step replay < 100 ms", replay_ms, 100, f"{replay_ms:.1f} ms"),
    ]
    if missing is not None:
        found.append(Target("run with one served step vs LangGraph's cached node", missing,
                            None))
    else:
        lg, mine = medians["LangGraph cached node (invoke)"], medians["run with one served step"]
        found.append(at_most("run with one served step <= LangGraph's cached node", mine, lg,
                             f"{human_ns(mine)} vs {human_ns(lg)} ({mine / lg:.2f}x)"))
    return found


def main() -> int:
    started = time.perf_counter()
    print("# wfnb steps benchmark\n")
    print(versions() + "\n")
    with tempfile.TemporaryDirectory(prefix="wfnb-bench-steps-") as tmp:
        medians, replay_ms, missing = measure(Path(tmp))
    floor = medians["raw sqlite3 load"]
    rows = [[name, human_ns(value), f"{value / floor:.2f}x"] for name, value in medians.items()]
    print(f"## Median per operation (~1 KB outputs and states), {ITERATIONS} timed iterations "
          f"each after {WARMUP} warm-up, round-robin\n")
    print(markdown_table(["operation", "median", "vs raw sqlite3 load"], rows) + "\n")
    print(f"100-step replay (a whole run, every step served): median {replay_ms:.1f} ms over "
          f"{REPLAY_ITERATIONS} runs ({replay_ms * 10:.0f} µs per step).\n")
    print("## Targets\n")
    print(targets_table(targets(medians, replay_ms, missing)) + "\n")
    print(f"Took {time.perf_counter() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
