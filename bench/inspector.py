"""State inspector benchmark: how fast the widget pages, searches and selects in 100,000 sessions.

Run with ``make bench-inspector`` (``python bench/inspector.py`` in the venv). It measures SQLite
(a file in a temporary folder) and, when ``WFNB_TEST_POSTGRES_URL`` is set, PostgreSQL too.

Setup. ``--sessions`` sessions (default 100,000) of a small state each (``{"count": i, "topic":
...}``, about 40 bytes), spread over five workflow names, are inserted straight into the
session and version tables with SQLAlchemy, in batches: the rows ``storage.save`` would write for
a first save (version 1, a full JSON row, source ``save``; on PostgreSQL the JSONB copy too).
``storage.save`` in a loop is timed on the first 1,000 of them and extrapolated, to say what the
shortcut saves. Then, with the widget built as in a notebook (no kernel here: widget messages go
to ipywidgets' dummy comm, so what is timed is wfnb's and the database's work, not the browser's):

- construct: ``StateInspector(storage)`` until its first page is listed;
- next page: ``next_page()`` from page 1 to page 2;
- last page: jump to the last page (``OFFSET`` near 100,000: the slowest page);
- search hit / miss: ``search(text)`` (``LIKE '%text%'`` on session ids, plus its count);
- workflow filter: ``filter_workflow(name)`` (indexed);
- select: ``select(session_id)``: read the state, its history and runs, render every tab
  (a different small session each time; and one holding a 1 MB state).

Each is repeated ``--repeat`` times (default 15, round-robin) and reported as the median, with
the limit the inspector is held to (300 ms for the first page, 150 ms for the rest).
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import sqlalchemy as sa

import wfnb
from wfnb.storage import encode_state

WORKFLOWS = ("BlogPostGenerator", "Summarizer", "notes", "Translator", "Researcher")
BATCH = 10_000
LIMITS_MS = {"construct + first page": 300.0}
DEFAULT_LIMIT_MS = 150.0


def insert_sessions(storage: wfnb.WorkflowStorage, count: int, *, start: float = 1.7e9) -> None:
    """Insert ``count`` sessions (``session-000000``...) as a first ``save`` of each would.

    Each is one session row and one full version row; ``updated_at`` grows with the number, so
    the newest (highest numbered) session lists first. For benchmark and test setup only.
    """
    engine = storage.db.engine
    assert engine is not None
    schema = sa.MetaData()
    sessions = sa.Table(storage.table_name, schema, autoload_with=engine)
    versions = sa.Table(f"{storage.table_name}_versions", schema, autoload_with=engine)
    jsonb = "state" in sessions.c
    for first in range(0, count, BATCH):
        session_rows, version_rows = [], []
        for number in range(first, min(first + BATCH, count)):
            state = {"count": number, "topic": f"topic {number}"}
            document = encode_state(state).document
            sid, now = f"session-{number:06d}", start + number / 1000
            row = {"session_id": sid, "workflow_name": WORKFLOWS[number % len(WORKFLOWS)],
                   "version": 1, "state_bytes": len(document), "created_at": now,
                   "updated_at": now}
            if jsonb:
                row["state"] = state
            session_rows.append(row)
            version_rows.append({"session_id": sid, "version": 1, "base_version": None,
                                 "data": document, "tagged": False,
                                 "state_bytes": len(document), "source": "save",
                                 "run_id": None, "created_at": now})
        with engine.begin() as conn:
            conn.execute(sa.insert(sessions), session_rows)
            conn.execute(sa.insert(versions), version_rows)


def time_saves(storage: wfnb.WorkflowStorage, count: int) -> float:
    """Seconds ``storage.save`` takes for ``count`` first saves of small states."""
    began = time.perf_counter()
    for number in range(count):
        storage.save(f"saved-{number:06d}", {"count": number, "topic": f"topic {number}"},
                     expected_version=0, workflow_name="timed")
    return time.perf_counter() - began


Step = tuple[Callable[[], object], Callable[[], object]]  # (untimed setup, timed operation)


def measure(storage: wfnb.WorkflowStorage, count: int, repeat: int) -> dict[str, list[float]]:
    """Milliseconds of each inspector operation, ``repeat`` times, round-robin."""
    from wfnb.notebook._inspector import StateInspector

    big = {"posts": [{"topic": f"topic {n}", "text": "word " * 200} for n in range(1000)]}
    storage.save("session-000000", big, expected_version=1)  # about 1 MB
    inspector = StateInspector(storage)
    hit = f"{count // 3:06d}"[:4]  # a substring of a few hundred ids
    picks = iter(range(count // 2, count))  # a session not read before, each time

    def unfiltered(page: int = 1) -> None:
        inspector.search("")
        inspector.filter_workflow(None)
        inspector.go_to_page(page)

    steps: dict[str, Step] = {
        "construct + first page": (lambda: None, lambda: StateInspector(storage).close()),
        "next page": (unfiltered, inspector.next_page),
        "previous page": (lambda: unfiltered(3), inspector.prev_page),
        "last page": (unfiltered, lambda: inspector.go_to_page(inspector.pages)),
        f"search hit ({hit!r})": (unfiltered, lambda: inspector.search(hit)),
        "search miss": (unfiltered, lambda: inspector.search("no-such-session")),
        "workflow filter": (unfiltered, lambda: inspector.filter_workflow(WORKFLOWS[1])),
        "select": (lambda: None, lambda: inspector.select(f"session-{next(picks):06d}")),
        "select (1 MB state)": (lambda: None, lambda: inspector.select("session-000000")),
    }
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeat):
        for name, (setup, operation) in steps.items():
            setup()
            began = time.perf_counter_ns()
            operation()
            times[name].append((time.perf_counter_ns() - began) / 1e6)
    assert "failed" not in inspector.status, inspector.status
    inspector.close()
    return times


def report(
    label: str, storage: wfnb.WorkflowStorage, timed: wfnb.WorkflowStorage, count: int,
    repeat: int,
) -> None:
    """Set up ``count`` sessions in ``storage`` and print the medians as a Markdown table
    (``timed``, another table of the same database, takes the sample of real saves)."""
    sample = min(1000, count)
    per_save = time_saves(timed, sample) / sample
    began = time.perf_counter()
    insert_sessions(storage, count)
    inserted = time.perf_counter() - began
    total = storage.count_sessions()
    print(f"\n### {label}: {total:,} sessions\n")
    print(f"setup: bulk insert {inserted:.1f} s; storage.save {per_save * 1e3:.2f} ms each "
          f"(would take {per_save * count:.0f} s for {count:,})\n")
    print("| operation | median | min | max | limit |")
    print("|---|---:|---:|---:|---:|")
    for name, values in measure(storage, count, repeat).items():
        limit = LIMITS_MS.get(name, DEFAULT_LIMIT_MS)
        median = statistics.median(values)
        verdict = "" if median <= limit else " (over)"
        print(f"| {name} | {median:.1f} ms{verdict} | {min(values):.1f} ms | "
              f"{max(values):.1f} ms | {limit:.0f} ms |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    began = time.perf_counter()
    versions = ", ".join(f"{name} {metadata.version(name)}"
                         for name in ("wfnb", "ipywidgets", "SQLAlchemy", "psycopg"))
    print(f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, {versions}; "
          f"{platform.platform()}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as folder:
        db_file = Path(folder) / "bench.db"
        bench, timed = (wfnb.SqliteWorkflowStorage(name, db_file) for name in ("bench", "timed"))
        report("SQLite", bench, timed, args.sessions, args.repeat)
        bench.close()
        timed.close()
    url = os.environ.get("WFNB_TEST_POSTGRES_URL")
    if url:
        postgres(url, args.sessions, args.repeat)
    else:
        print("\nPostgreSQL skipped: WFNB_TEST_POSTGRES_URL is not set")
    print(f"\nTook {time.perf_counter() - began:.0f} s.")


def postgres(url: str, count: int, repeat: int) -> None:
    """The same on PostgreSQL, in tables of this process's own, dropped afterwards."""
    names = [f"inspector_bench_{os.getpid()}", f"inspector_timed_{os.getpid()}"]
    shared, sampled = (wfnb.WorkflowStorage(name, url) for name in names)
    try:
        report("PostgreSQL", shared, sampled, count, repeat)
    finally:
        shared.close()
        sampled.close()
        engine = sa.create_engine(shared.db_url)
        with engine.begin() as conn:
            for name in names:
                for suffix in ("", "_versions", "_runs", "_meta"):
                    conn.execute(sa.text(f'DROP TABLE IF EXISTS "{name}{suffix}"'))
        engine.dispose()


if __name__ == "__main__":
    main()
