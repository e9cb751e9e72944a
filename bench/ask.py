"""Ask benchmark: what a question costs a run, end to end: the run stops at ``ask`` (its state
saved, recorded ``waiting``), an answer is recorded, and the run continues to its end (one
completed step served, ``ask`` given its answer). Next to LangGraph's ``interrupt()`` and
``Command(resume=...)`` on its SQLite checkpointer, and raw sqlite3 (one save and one load, the
floor of any pause that survives a restart).

Run with ``python bench/ask.py`` (in the venv; LangGraph from the ``bench`` extra). One SQLite
file per store, WAL and ``synchronous=NORMAL``. Contenders take turns round-robin (see
steps.py's Race) and medians are reported, so machine noise hits all of them alike. The step
output and the state are ~1 KB of text; every round trip uses a new session (LangGraph: a new
thread), as a new question would.
"""

from __future__ import annotations

import itertools
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from steps import OUTPUT, Race, at_most, versions
from storage import RawSqlite, Target, human_ns, markdown_table, targets_table

import wfnb
from wfnb import Workflow, step

ITERATIONS = 200


class Approval(Workflow):
    """A step, then a question; the answer goes into the state."""

    @step
    def draft(self, topic: str) -> dict[str, str]:
        return {"topic": topic, "text": OUTPUT}

    def run(self, topic: str) -> Any:  # the wrapped run yields RunResponses
        draft = self.draft(topic)
        self.session_state["draft"] = draft["text"]
        yield draft["topic"]
        self.session_state["approved"] = self.ask("Approve?", options=["yes", "no"])


def wfnb_round_trip(storage: wfnb.WorkflowStorage) -> Callable[[], object]:
    """Run to the question, answer it, run to the end, on a new session each time."""
    sessions = (f"s{n}" for n in itertools.count())

    def round_trip() -> None:
        workflow = Approval(session_id=next(sessions), storage=storage)
        *_, paused = workflow.run("pasta")
        assert paused.event == "RunPaused"
        *_, last = workflow.resume("yes")
        assert workflow.session_state["approved"] == "yes", last

    return round_trip


def langgraph_round_trip(folder: Path) -> Callable[[], object] | str:
    """``invoke`` to the ``interrupt``, then ``invoke(Command(resume=...))``, or why not."""
    try:
        import sqlite3
        from typing import TypedDict

        from langgraph.checkpoint.sqlite import SqliteSaver
        from langgraph.graph import END, START, StateGraph
        from langgraph.types import Command, interrupt
    except ImportError as exc:
        return f"not installed: {exc.name}"

    class GraphState(TypedDict, total=False):
        topic: str
        draft: str
        approved: str

    def draft(state: GraphState) -> GraphState:
        return {"draft": OUTPUT}

    def approve(state: GraphState) -> GraphState:
        return {"approved": interrupt("Approve?")}

    builder = StateGraph(GraphState)
    builder.add_node("draft", draft)
    builder.add_node("approve", approve)
    builder.add_edge(START, "draft")
    builder.add_edge("draft", "approve")
    builder.add_edge("approve", END)
    connection = sqlite3.connect(folder / "langgraph.db", check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    graph = builder.compile(checkpointer=SqliteSaver(connection))
    threads = (f"t{n}" for n in itertools.count())

    def round_trip() -> None:
        config: Any = {"configurable": {"thread_id": next(threads)}}
        paused = graph.invoke({"topic": "pasta"}, config)
        assert "__interrupt__" in paused
        done = graph.invoke(Command(resume="yes"), config)
        assert done["approved"] == "yes"

    return round_trip


def raw_floor(folder: Path) -> Callable[[], object]:
    raw = RawSqlite(folder / "raw.db", "s", {"draft": OUTPUT, "approved": None})

    def save_and_load() -> None:
        raw.save()
        raw.load()

    return save_and_load


def targets(medians: dict[str, float], missing: str | None) -> list[Target]:
    """The peer is the line (the raw floor is shown for scale: a round trip is a dozen
    transactions, each a separate commit, so it is never near one save and one load)."""
    mine = medians["wfnb ask round trip"]
    if missing is not None:
        return [Target("ask round trip vs LangGraph interrupt + resume", missing, None)]
    theirs = medians["LangGraph interrupt + resume"]
    return [at_most("ask round trip <= LangGraph interrupt + resume", mine, theirs,
                    f"{human_ns(mine)} vs {human_ns(theirs)} ({mine / theirs:.2f}x)")]


def main() -> int:
    started = time.perf_counter()
    print("# wfnb ask benchmark\n")
    print(versions() + "\n")
    with tempfile.TemporaryDirectory(prefix="wfnb-bench-ask-") as tmp:
        folder = Path(tmp)
        storage = wfnb.SqliteWorkflowStorage("bench", folder / "wfnb.db")
        contenders: dict[str, Callable[[], object]] = {
            "raw sqlite3 save + load": raw_floor(folder),
            "wfnb ask round trip": wfnb_round_trip(storage),
        }
        graph = langgraph_round_trip(folder)
        if not isinstance(graph, str):
            contenders["LangGraph interrupt + resume"] = graph
        medians = Race(contenders).run(ITERATIONS)
        storage.close()
    floor = medians["raw sqlite3 save + load"]
    rows = [[name, human_ns(value), f"{value / floor:.1f}x"] for name, value in medians.items()]
    print(f"## Median per round trip (pause at a question, answer, run to the end; ~1 KB state), "
          f"{ITERATIONS} timed iterations, round-robin\n")
    print(markdown_table(["operation", "median", "vs raw sqlite3 save + load"], rows) + "\n")
    print("## Targets\n")
    print(targets_table(targets(medians, graph if isinstance(graph, str) else None)) + "\n")
    print(f"Took {time.perf_counter() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
