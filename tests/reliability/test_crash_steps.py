"""Durable steps under kill -9: a five-step workflow killed at random moments, 100 times per
backend, resumes where it stopped.

Each child runs the workflow once on a session (serving what earlier children completed) and is
SIGKILLed after a random time up to an uninterrupted run's duration (in 1 of 5 cases counted
from the fork, so some kills land while it opens the database). Step bodies append
"S name session" to a side-effect file outside the database when they start. When a child
completes the run, the session is checked and the next one begins. Asserted: SQLite's integrity
check after every kill; no step that was completed (in the database) before a child started
executes again in that child (its side-effect lines); at the end of each session, each step has
exactly one completed record whose body ran, and the final state and output equal those of an
uninterrupted run.
"""

from __future__ import annotations

import os
import random
import select
import signal
import time
from collections import Counter
from pathlib import Path

from tests.reliability._support import Children, Target, record_figure, sqlite_integrity
from tests.reliability._workers import FiveSteps, step_runner
from wfnb import WorkflowStorage

KILLS = 100
STEPS = ("s1", "s2", "s3", "s4", "s5")


def completed_steps(storage: WorkflowStorage, session_id: str) -> set[str]:
    """The steps with a completed record whose body ran (what later runs are served)."""
    return {record.name.rsplit(".", 1)[-1] for record in storage.steps(session_id)
            if record.status == "completed" and not record.cached}


def reference(target: Target, tmp_path: Path) -> tuple[str, dict[str, object], float]:
    """The output and state of an uninterrupted run, and how long it took."""
    storage = target.open()
    log = os.open(tmp_path / "reference.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        wf = FiveSteps(session_id="reference", storage=storage, log_fd=log)
        began = time.perf_counter()
        output = "".join(response.get_content_as_string() for response in wf.run("pasta"))
        return output, dict(wf.session_state), time.perf_counter() - began
    finally:
        os.close(log)
        storage.close()


def test_kill_minus_nine_never_executes_a_completed_step_again(
    target: Target, children: Children, tmp_path: Path
) -> None:
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    expected_output, expected_state, seconds = reference(target, tmp_path)
    storage = target.open(keep_versions=None)
    log_path, done_path = tmp_path / "side-effects.log", tmp_path / "done.txt"
    log_path.touch()  # a child killed before it opens the log leaves none
    sessions, kills, early, resumed_at = 0, 0, 0, Counter[str]()
    session_id = "crash-0"
    offset = 0
    began = time.perf_counter()
    while kills < KILLS:
        done_before = completed_steps(storage, session_id)
        ready_r, ready_w = os.pipe()
        child = children.start(step_runner, target, session_id, log_path, done_path, ready_w)
        os.close(ready_w)
        if rng.random() < 0.2:
            early += 1
        else:
            readable, _, _ = select.select([ready_r], [], [], 30)
            assert readable, "the child did not open its storage in 30 s"
        time.sleep(rng.uniform(0, seconds))  # anywhere in a run
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        child.join(30)
        os.close(ready_r)
        finished = child.exitcode == 0
        assert finished or child.exitcode == -signal.SIGKILL, f"child ended {child.exitcode}"
        kills += not finished
        if target.db_file is not None:
            assert sqlite_integrity(target.db_file) == "ok"
        with open(log_path, "rb") as log:
            log.seek(offset)
            new_lines = log.read().decode().splitlines()
            offset = log.tell()
        executed = [line.split()[1] for line in new_lines if line.endswith(f" {session_id}")]
        again = sorted(set(executed) & done_before)
        assert not again, f"completed steps {again} executed again in {session_id}"
        if executed:
            resumed_at[executed[0]] += bool(done_before)
        if finished:
            check_session(storage, session_id, done_path, expected_output, expected_state)
            done_path.unlink()
            sessions += 1
            session_id = f"crash-{sessions}"
    # a final, uninterrupted child completes the last session
    ready_r, ready_w = os.pipe()
    children.start(step_runner, target, session_id, log_path, done_path, ready_w).join(60)
    os.close(ready_w)
    os.close(ready_r)
    check_session(storage, session_id, done_path, expected_output, expected_state)
    record_figure(
        f"kill -9 of durable steps, {target.backend}, {KILLS} kills",
        f"{KILLS} kills in {time.perf_counter() - began:.1f}s ({early} counted from the fork; "
        f"a run takes {seconds * 1000:.0f} ms), "
        f"{sessions + 1} sessions completed; resumed at {dict(sorted(resumed_at.items()))}; "
        "no completed step executed again; outputs and states equal an uninterrupted run's; "
        "integrity ok",
    )


def check_session(storage: WorkflowStorage, session_id: str, done_path: Path,
                  expected_output: str, expected_state: dict[str, object]) -> None:
    """A completed session: its output and state as uninterrupted, each step completed once."""
    assert done_path.read_text() == expected_output
    stored = storage.read(session_id)
    assert stored is not None and stored.session_state == expected_state
    executed = Counter(record.name.rsplit(".", 1)[-1] for record in storage.steps(session_id)
                       if record.status == "completed" and not record.cached)
    assert executed == Counter(STEPS), executed
