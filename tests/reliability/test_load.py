"""Load: 8 processes of real Workflow runs on one session (no lost update, gap-free history),
on distinct sessions (a throughput figure), and an inspector-style edit racing a running workflow.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.reliability._support import FORK, Children, Target, record_figure
from tests.reliability._workers import rmw_runs
from wfnb import SaveResult, SessionConflictError, StorageError, WfnbError, WorkflowStorage
from wfnb.storage._sessions import Sessions

PROCESSES = 8
EDITS = RUNS = 60  # inspector edits, and runs, in the race at least


def run_workers(
    children: Children, target: Target, tmp_path: Path, sessions: list[str], runs: int,
    timeout: float,
) -> tuple[list[dict[str, Any]], float]:
    """Start one rmw_runs child per session id, release them together; reports and seconds."""
    start = FORK.Barrier(len(sessions) + 1)
    reports = [tmp_path / f"worker-{index}.json" for index in range(len(sessions))]
    for index, (session_id, report) in enumerate(zip(sessions, reports, strict=True)):
        children.start(rmw_runs, target, session_id, index, runs, report, start, timeout)
    start.wait(timeout=60)
    began = time.perf_counter()
    children.join_all(timeout)
    elapsed = time.perf_counter() - began
    assert all(p.exitcode == 0 for p in children.started), [p.exitcode for p in children.started]
    return [orjson.loads(report.read_bytes()) for report in reports], elapsed


def check_one_session(storage: WorkflowStorage, session_id: str, reports: list[dict[str, Any]],
                      runs: int) -> None:
    """Every invariant of the one-session load test."""
    errors = [error for report in reports for error in report["errors"]]
    assert not errors, errors[0]  # nothing but SessionConflictError escaped (no "locked")
    completed = [tag for report in reports for tag in report["completed"]]
    assert len(completed) == PROCESSES * runs
    stored = storage.read(session_id)
    assert stored is not None
    state = stored.session_state
    assert state["counter"] == len(completed)
    assert sorted(state["appends"]) == sorted(completed)  # each append once, no failed attempt
    assert stored.version == len(completed) + 1  # version 1 is the seed
    versions = [v.version for v in storage.history(session_id)]
    assert versions == list(range(stored.version, 0, -1))  # gap-free, monotonic
    previous: list[str] = []
    every = range(1, stored.version + 1)  # all of them, or 300 (reading each costs a query)
    for version in every if len(every) <= 300 else sorted(random.sample(every, 300)):
        old = storage.read(session_id, version)
        assert old is not None
        appends = old.session_state["appends"]
        assert old.session_state["counter"] == len(appends) == version - 1
        assert appends[: len(previous)] == previous  # each version extends the ones before
        previous = appends
    runs_by_status: dict[str, int] = {}
    for run in storage.runs(session_id):
        runs_by_status[run.status] = runs_by_status.get(run.status, 0) + 1
    conflicts = sum(report["conflicts"] for report in reports)
    assert runs_by_status == {"completed": len(completed), **({"failed": conflicts}
                                                             if conflicts else {})}


def one_session(target: Target, children: Children, tmp_path: Path, runs: int) -> None:
    storage = target.open(keep_versions=None)
    storage.save("shared", {"counter": 0, "appends": []}, expected_version=0)
    reports, elapsed = run_workers(children, target, tmp_path, ["shared"] * PROCESSES, runs,
                                   timeout=600)
    check_one_session(storage, "shared", reports, runs)
    conflicts = sum(report["conflicts"] for report in reports)
    record_figure(
        f"load one session, {target.backend}, {PROCESSES}x{runs}",
        f"{PROCESSES * runs} runs in {elapsed:.1f}s ({PROCESSES * runs / elapsed:.0f} runs/s), "
        f"{conflicts} conflicts retried",
    )


def test_eight_processes_on_one_session_lose_no_update(
    target: Target, children: Children, tmp_path: Path
) -> None:
    one_session(target, children, tmp_path, runs=25)


@pytest.mark.slow
def test_eight_processes_250_runs_each_on_one_session_lose_no_update(
    target: Target, children: Children, tmp_path: Path
) -> None:
    one_session(target, children, tmp_path, runs=250)


def test_throughput_of_eight_processes_on_distinct_sessions(
    target: Target, children: Children, tmp_path: Path
) -> None:
    runs = 250
    sessions = [f"tp-{index}" for index in range(PROCESSES)]
    reports, elapsed = run_workers(children, target, tmp_path, sessions, runs, timeout=600)
    assert not [error for report in reports for error in report["errors"]]
    assert sum(report["conflicts"] for report in reports) == 0
    storage = target.open()
    for session_id, report in zip(sessions, reports, strict=True):
        stored = storage.read(session_id)
        assert stored is not None and stored.version == runs
        assert stored.session_state["appends"] == report["completed"]
    total = PROCESSES * runs
    record_figure(
        f"throughput distinct sessions, {target.backend}, {PROCESSES}x{runs}",
        f"{total} runs in {elapsed:.2f}s = {total / elapsed:.0f} runs/s",
    )


def edit(storage: WorkflowStorage, index: int) -> SaveResult | WfnbError:
    """One inspector edit: read, change (counter on odd, notes on even), think, save."""
    seen = storage.read("s")
    assert seen is not None
    state = seen.session_state
    if index % 2:
        state["counter"] += 1000
    else:
        state["notes"] = [*state.get("notes", []), index]
    time.sleep(random.uniform(0, 0.004))  # the inspector thinks a little
    try:
        return storage.save("s", state, expected_version=seen.version, source="edit")
    except (SessionConflictError, StorageError) as error:
        return error


def runs_done(storage: WorkflowStorage) -> int:
    stored = storage.read("s")
    assert stored is not None
    return len(stored.session_state["appends"])


def test_an_inspector_edit_racing_a_running_workflow_never_overwrites_silently(
    target: Target, children: Children, tmp_path: Path
) -> None:
    """Edits (save with the version read, source="edit") race a process running workflows:
    an edit of the key the runs change (counter) either wins the swap or conflicts, an edit of
    another key (notes) merges; afterwards every successful change is there.

    The race lasts until both kinds of edit got through a few times, EDITS edits were made and
    RUNS runs completed (the worker is told to stop then): how far each side gets in a given
    time depends on how the machine schedules the two processes, so a fixed number of runs
    could end the race before the first same-key edit won (seen under load, when 60 runs took
    0.1 s)."""
    storage = target.open(keep_versions=None)
    storage.save("s", {"counter": 0, "appends": []}, expected_version=0)
    start, stop = FORK.Barrier(2), FORK.Event()
    report = tmp_path / "worker.json"
    worker = children.start(rmw_runs, target, "s", 0, 100_000, report, start, 300.0, stop)
    start.wait(timeout=60)
    counter_edits = conflicts = gave_up = 0
    notes: list[int] = []
    index = 0
    while worker.is_alive():
        if index >= EDITS and min(counter_edits, len(notes)) >= 3 and runs_done(storage) >= RUNS:
            stop.set()
        index += 1
        result = edit(storage, index)
        if isinstance(result, SessionConflictError):
            assert index % 2 and result.keys == ["counter"]  # notes edits never conflict
            conflicts += 1
        elif isinstance(result, StorageError):  # lost the swap 8 times in a row: nothing written
            assert "gave up" in str(result)
            gave_up += 1
        else:
            assert isinstance(result, SaveResult) and result.written
            if index % 2:
                counter_edits += 1
            else:
                notes.append(index)
    children.join_all(60)
    outcome = orjson.loads(report.read_bytes())
    assert not outcome["errors"], outcome["errors"][0]
    stored = storage.read("s")
    assert stored is not None
    final = stored.session_state
    assert final["counter"] == len(outcome["completed"]) + 1000 * counter_edits
    assert sorted(final["appends"]) == sorted(outcome["completed"])
    assert final.get("notes", []) == notes
    edits = [v for v in storage.history("s") if v.source == "edit"]
    assert len(edits) == counter_edits + len(notes)
    assert counter_edits and notes  # both kinds of edit got through at least once
    record_figure(
        f"inspector edits racing runs, {target.backend}",
        f"{index} edits: {counter_edits} same-key edits won, {conflicts} conflicted, "
        f"{len(notes)} other-key edits merged, {gave_up} gave up; "
        f"{len(outcome['completed'])} runs, {outcome['conflicts']} run conflicts",
    )


def test_a_merge_raced_by_a_third_writer_still_merges(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A save loses the swap to writer B, and B saves again before the merge reads the current
    state. Was: the merged state was swapped against the version the swap lost to (not the one
    merged on), lost again, and the second merge, on the wrong base, reported a conflict on B's
    key although the writers changed different keys (seen under load on PostgreSQL)."""
    ours, theirs = target.open(), target.open()
    ours.save("s", {"a": 0, "b": 0}, expected_version=0)
    theirs.save("s", {"a": 1, "b": 0}, expected_version=1)
    merge = Sessions._merge
    raced: list[int] = []

    def merge_after_b_saves_again(self: Sessions, *args: Any) -> Any:
        if not raced:
            raced.append(theirs.save("s", {"a": 2, "b": 0}, expected_version=2).version)
        return merge(self, *args)

    monkeypatch.setattr(Sessions, "_merge", merge_after_b_saves_again)
    result = ours.save("s", {"a": 0, "b": 9}, expected_version=1)
    assert raced == [3]
    assert (result.version, result.merged_keys) == (4, ("a",))
    stored = ours.read("s")
    assert stored is not None and stored.session_state == {"a": 2, "b": 9}
