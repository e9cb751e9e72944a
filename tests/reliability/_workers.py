"""What the forked children of the reliability suite do: real Workflow runs and saves.

Each child opens its own storage on the test's Target and reports through a JSON file (or, for
the crash test, an append-only log written with fsync before and after each commit), because a
child that is killed cannot report anything else.
"""

from __future__ import annotations

import logging
import os
import random
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from tests.reliability._support import Target
from wfnb import RunResponse, SessionConflictError, Workflow, step


class CounterAppend(Workflow):
    """The read-modify-write run of the load tests: a counter and a list append per run."""

    def run(self, tag: str) -> Iterator[RunResponse]:
        state = self.session_state
        state["counter"] = state.get("counter", 0) + 1
        state.setdefault("appends", []).append(tag)
        yield RunResponse(content=tag)


def rmw_runs(
    target: Target,
    session_id: str,
    worker: int,
    runs: int,
    report: Path,
    start: Any = None,
    deadline: float = 300.0,
    stop: Any = None,
) -> None:
    """``runs`` completed CounterAppend runs on ``session_id``, retrying each on conflict
    (fewer if the ``stop`` event is set: the run under way completes, no other starts).

    Reports the tags of completed runs, the number of conflicts and any other error (which the
    tests treat as a failure: nothing but SessionConflictError may escape a run).
    """
    logging.getLogger("wfnb").setLevel(logging.ERROR)
    completed: list[str] = []
    conflicts = 0
    errors: list[str] = []
    storage = target.open(keep_versions=None)
    wf = CounterAppend(session_id=session_id, storage=storage)
    if start is not None:
        start.wait()
    began = time.monotonic()
    try:
        for index in range(runs):
            if stop is not None and stop.is_set():
                break
            attempt = 0
            while time.monotonic() - began < deadline:
                tag = f"w{worker}-r{index}-a{attempt}"
                try:
                    for _ in wf.run(tag=tag):
                        pass
                except SessionConflictError:
                    conflicts += 1
                    attempt += 1
                    wf.read_from_storage()  # the documented resolution: reload, run again
                    time.sleep(random.uniform(0, 0.01 * min(attempt, 10)))
                    continue
                completed.append(tag)
                break
    except Exception:
        errors.append(traceback.format_exc())
    finally:
        report.write_bytes(orjson.dumps(
            {"completed": completed, "conflicts": conflicts, "errors": errors}
        ))
        storage.close()


def crash_state(version: int) -> dict[str, Any]:
    """The state the crash test's child commits as ``version``: large enough for deltas."""
    return {
        "version": version,
        "items": [f"item {i}" for i in range(version)],
        "pad": "p" * 5000,
        "parity": version % 2,
    }


class CrashRun(Workflow):
    """A run that makes the state of the next version (the crash child alternates runs and
    direct saves, so kills land in both paths)."""

    def run(self, version: int) -> Iterator[RunResponse]:
        self.session_state.clear()
        self.session_state.update(crash_state(version))
        yield RunResponse(content=str(version))


def _log(fd: int, line: str) -> None:
    os.write(fd, line.encode() + b"\n")
    os.fsync(fd)


def crash_saver(target: Target, session_id: str, log_path: Path, ready_fd: int) -> None:
    """Save the next crash_state forever, logging "B v" before and "A v" after each commit,
    until the parent kills this process with SIGKILL. Every 7th version is followed by a prune
    (killed there too, sometimes); every other version is saved by a Workflow run.
    """
    logging.getLogger("wfnb").setLevel(logging.ERROR)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    storage = target.open(keep_versions=None)
    wf = CrashRun(session_id=session_id, storage=storage)
    os.write(ready_fd, b"R")
    version = wf.version
    while True:
        new = version + 1
        _log(log, f"B {new}")
        if new % 2:
            for _ in wf.run(version=new):
                pass
        else:
            storage.save(session_id, crash_state(new), expected_version=version,
                         workflow_name="CrashRun")
            wf.read_from_storage()
        _log(log, f"A {new}")
        version = new
        if new % 7 == 0:
            storage.prune(keep=20, session_id=session_id)


class FiveSteps(Workflow):
    """Five steps, each logging "S name" to a side-effect file (outside the database) when its
    body starts and sleeping a few milliseconds, so kills land inside and between steps."""

    log_fd: Any = None

    def _body(self, name: str) -> None:
        os.write(self.log_fd, f"S {name} {self.session_id}\n".encode())
        time.sleep(random.uniform(0.001, 0.006))

    @step
    def s1(self, topic: str) -> list[str]:
        self._body("s1")
        return [topic, topic.upper()]

    @step
    def s2(self, words: list[str]) -> dict[str, Any]:
        self._body("s2")
        return {"words": words, "count": len(words)}

    @step
    def s3(self, doc: dict[str, Any]) -> Iterator[str]:
        self._body("s3")
        for word in doc["words"]:
            yield f"<{word}>"

    @step
    def s4(self, doc: dict[str, Any]) -> tuple[int, ...]:
        self._body("s4")
        return tuple(range(doc["count"] * 2))

    @step
    def s5(self, numbers: tuple[int, ...]) -> str:
        self._body("s5")
        return f"sum {sum(numbers)}"

    def run(self, topic: str) -> Iterator[Any]:
        doc = self.s2(self.s1(topic))
        yield from self.s3(doc)
        numbers = self.s4(doc)
        result = self.s5(numbers)
        self.session_state["result"] = {"numbers": numbers, "result": result}
        yield result


def step_runner(target: Target, session_id: str, log_path: Path, done_path: Path,
                ready_fd: int) -> None:
    """Run FiveSteps on ``session_id`` once (serving what earlier, killed children completed);
    write the run's whole output to ``done_path`` when it completes."""
    logging.getLogger("wfnb").setLevel(logging.ERROR)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    storage = target.open(keep_versions=None)
    wf = FiveSteps(session_id=session_id, storage=storage, log_fd=log)
    os.write(ready_fd, b"R")
    output = "".join(response.get_content_as_string() for response in wf.run("pasta"))
    done_path.write_text(output)
