"""Crashes: kill -9 a process that is saving (by runs, direct saves and prunes) at random moments,
100 times per backend; after each kill the database is sound and holds exactly what was committed.

The child logs "B v" before and "A v" after committing version v, each line fsync'ed, so after a
kill the parent knows that versions up to the last "A" were committed and none after the last
"B" was. It checks, after every kill: SQLite's ``PRAGMA integrity_check``; the session loads;
its version lies between those bounds (nothing committed is lost, nothing uncommitted appears);
its state is exactly the state committed as that version; the history is gap-free and its newest
versions read back. At the end every version in history is read back.
"""

from __future__ import annotations

import os
import random
import select
import signal
import time
from pathlib import Path

import pytest

from tests.reliability._support import Children, Target, record_figure, sqlite_integrity
from tests.reliability._workers import crash_saver, crash_state
from wfnb import WorkflowStorage

KILLS = 100


def bounds(log_path: Path) -> tuple[int, int]:
    """(newest version logged as committed, newest version logged as about to commit)."""
    after = before = 0
    if log_path.exists():
        for line in log_path.read_text().splitlines():
            kind, _, number = line.partition(" ")
            if kind == "A":
                after = max(after, int(number))
            elif kind == "B":
                before = max(before, int(number))
    return after, before


def check_after_kill(storage: WorkflowStorage, target: Target, log_path: Path, full: bool) -> int:
    """All the invariants after one kill; returns the stored version."""
    if target.db_file is not None:
        assert sqlite_integrity(target.db_file) == "ok"
    committed, attempted = bounds(log_path)
    stored = storage.read("crash")
    if stored is None:
        assert committed == 0
        return 0
    assert committed <= stored.version <= max(attempted, committed)
    assert stored.session_state == crash_state(stored.version)
    versions = [v.version for v in storage.history("crash")]
    assert versions == list(range(stored.version, stored.version - len(versions), -1))
    for version in versions if full else versions[:3]:
        old = storage.read("crash", version)
        assert old is not None and old.session_state == crash_state(version)
    return stored.version


def kill_repeatedly(target: Target, children: Children, tmp_path: Path, kills: int) -> None:
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    storage = target.open(keep_versions=None)
    log_path = tmp_path / "commits.log"
    in_flight = committed_in_flight = early = 0
    began = time.perf_counter()
    for _ in range(kills):
        ready_r, ready_w = os.pipe()
        child = children.start(crash_saver, target, "crash", log_path, ready_w)
        os.close(ready_w)
        if rng.random() < 0.2:  # while it opens the database (and checks the schema)
            early += 1
            time.sleep(rng.uniform(0, 0.03))
        else:
            readable, _, _ = select.select([ready_r], [], [], 30)
            assert readable, "the crash child did not open its storage in 30 s"
            time.sleep(rng.uniform(0, 0.03))
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        child.join(30)
        os.close(ready_r)
        assert child.exitcode == -signal.SIGKILL, f"child ended with {child.exitcode}"
        committed, attempted = bounds(log_path)
        version = check_after_kill(storage, target, log_path, full=False)
        if attempted > committed:
            in_flight += 1
            committed_in_flight += version == attempted
    version = check_after_kill(storage, target, log_path, full=True)
    # the killed children's runs: abandoned (their process is gone), never left running
    abandoned = sum(run.status == "abandoned" for run in storage.runs("crash"))
    assert {run.status for run in storage.runs("crash")} <= {"completed", "abandoned"}
    storage.save("crash", crash_state(version + 1), expected_version=version)  # still writable
    record_figure(
        f"kill -9, {target.backend}, {kills} kills",
        f"{kills} kills in {time.perf_counter() - began:.1f}s ({early} while opening), "
        f"{version} versions committed; {in_flight} kills hit a save between its 'before' and "
        f"'after' log lines ({committed_in_flight} of those had committed); {abandoned} runs "
        "recorded 'abandoned' (none left 'running'); integrity ok, nothing committed lost",
    )


def test_kill_minus_nine_at_random_moments_loses_nothing_committed(
    target: Target, children: Children, tmp_path: Path
) -> None:
    kill_repeatedly(target, children, tmp_path, KILLS)


@pytest.mark.slow
def test_more_kills_on_a_longer_history(
    target: Target, children: Children, tmp_path: Path
) -> None:
    kill_repeatedly(target, children, tmp_path, 3 * KILLS)
