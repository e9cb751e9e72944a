"""Runs whose process was killed become ``abandoned`` (issue 12): a real child process is killed
with SIGKILL mid-run; the next run of the session, storage.runs() and ``wfnb runs`` mark it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from tests.conftest import StorageFactory, postgres_url
from tests.test_cli import ROOT, run_wfnb
from wfnb import RunResponse, Workflow, WorkflowStorage

_CHILD = """
import sys, time
from wfnb import RunResponse, Workflow, WorkflowStorage

class Slow(Workflow):
    def run(self):
        self.session_state["started"] = True
        print("running", flush=True)
        time.sleep(120)
        yield RunResponse(content="never")

storage = WorkflowStorage(sys.argv[1], sys.argv[2])
list(Slow(session_id="s", storage=storage).run())
"""


class Quick(Workflow):
    def run(self) -> Any:
        self.session_state["n"] = self.session_state.get("n", 0) + 1
        yield RunResponse(content="ok")


def start_child(storage: WorkflowStorage, url: str) -> subprocess.Popen[str]:
    """A child process in the middle of a run of session "s" (its run recorded ``running``)."""
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, storage.table_name, url], stdout=subprocess.PIPE,
        text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None and child.stdout.readline() == "running\n"
    return child


def kill(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL


@pytest.fixture
def url(backend: str, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'workflows.db'}" if backend == "sqlite" else postgres_url()


def statuses(storage: WorkflowStorage) -> list[str]:
    return [run.status for run in storage.runs("s")]


def test_a_killed_run_is_abandoned_when_runs_are_listed(
    make_storage: StorageFactory, url: str
) -> None:
    storage = make_storage()
    child = start_child(storage, url)
    try:
        (running,) = storage.runs("s")
        assert running.status == "running"
        with storage.db.engine.connect() as conn:  # type: ignore[union-attr]
            owner = conn.execute(sa.text(
                f'SELECT host, pid FROM "{storage.table_name}_runs"')).one()
        assert (owner.host, owner.pid) == (socket.gethostname(), child.pid)
    finally:
        kill(child)
    (abandoned,) = storage.runs("s")
    assert abandoned.status == "abandoned"
    # nothing else about it changed; the state it never saved is not stored
    assert (abandoned.run_id, abandoned.ended_at, abandoned.error, abandoned.version) == (
        running.run_id, None, None, None)
    assert storage.read("s") is None


def test_the_next_run_of_the_session_abandons_a_killed_one(
    make_storage: StorageFactory, url: str
) -> None:
    storage = make_storage()
    kill(start_child(storage, url))
    list(Quick(session_id="s", storage=storage).run())
    with storage.db.engine.connect() as conn:  # type: ignore[union-attr]
        rows = conn.execute(sa.text(
            f'SELECT status FROM "{storage.table_name}_runs" ORDER BY started_at')).all()
    assert [row.status for row in rows] == ["abandoned", "completed"]  # before any listing


def test_wfnb_runs_shows_a_killed_run_abandoned(
    make_storage: StorageFactory, url: str, db_args: list[str], tmp_path: Path
) -> None:
    storage = make_storage()
    kill(start_child(storage, url))
    args = db_args
    done = run_wfnb(*args, "runs", "s", "--json", cwd=tmp_path)
    assert [run["status"] for run in orjson.loads(done.stdout)] == ["abandoned"], done.stderr
    assert "abandoned" in run_wfnb(*args, "runs", "s", cwd=tmp_path).stdout


def test_a_live_run_a_reused_pid_and_another_host(make_storage: StorageFactory, url: str) -> None:
    """A run whose process lives stays ``running``; the same pid with another process start
    (the pid reused) is gone; a run of another host is left alone (its process is unknown)."""
    storage = make_storage()
    child = start_child(storage, url)
    try:
        assert statuses(storage) == ["running"]
        runs = f'"{storage.table_name}_runs"'
        with storage.db.engine.begin() as conn:  # type: ignore[union-attr]
            conn.execute(sa.text(f"UPDATE {runs} SET host = 'elsewhere'"))
        kill(child)
        assert statuses(storage) == ["running"]
        with storage.db.engine.begin() as conn:  # type: ignore[union-attr]
            conn.execute(sa.text(f"UPDATE {runs} SET host = :host, pid = :pid, "
                                 "process_start = 'another boot:1'"),
                         {"host": socket.gethostname(), "pid": os.getpid()})
        assert statuses(storage) == ["abandoned"]
    finally:
        if child.poll() is None:
            kill(child)
