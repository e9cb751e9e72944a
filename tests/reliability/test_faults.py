"""Faults: the database becomes unwritable, full, locked or unreachable in the middle of a run.

Each fault must give a StorageError naming the session and the cause, keep the run's state in
memory so that ``write_to_storage()`` can be retried, leave no partial rows, and let the next
save after recovery work.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import postgres_url
from tests.reliability._support import (
    count_rows,
    local_cluster,
    pg_admin,
    pg_ctl,
    terminate_backends,
    tmpfs,
    unique,
    wait_for_postgres,
    with_application_name,
)
from wfnb import (
    RunResponse,
    SqliteWorkflowStorage,
    StorageError,
    Workflow,
    WorkflowStorage,
)


class Count(Workflow):
    def run(self, pad: int = 0) -> Iterator[RunResponse]:
        self.session_state["n"] = self.session_state.get("n", 0) + 1
        if pad:
            self.session_state["pad"] = "x" * pad
        yield RunResponse(content="started")
        yield RunResponse(content="finished")


def rows(storage: WorkflowStorage) -> tuple[int, int]:
    return count_rows(storage, ""), count_rows(storage, "_versions")


def check_failed_save(error: BaseException, session_id: str, cause: str) -> None:
    """A StorageError about the save (not about recording the run), naming session and cause."""
    assert isinstance(error, StorageError), repr(error)
    message = str(error)
    assert "could not save the session" in message, message
    assert f"session {session_id!r}" in message, message
    assert cause in message, message


@contextlib.contextmanager
def immutable(*paths: Path) -> Iterator[None]:
    """``chattr +i``: even root cannot write them, through descriptors already open too."""
    subprocess.run(["chattr", "+i", *map(str, paths)], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, paths)], check=True, capture_output=True)


def chattr_works(directory: Path) -> bool:
    probe = directory / "chattr-probe"
    probe.write_bytes(b"")
    try:
        with immutable(probe):
            pass
    except (OSError, subprocess.CalledProcessError):
        return False
    finally:
        probe.unlink()
    return True


def test_sqlite_file_turned_read_only_mid_run(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                              ) -> None:
    if not chattr_works(tmp_path):
        pytest.skip("chattr +i is not available here (needs root and ext4/tmpfs)")
    db_file = tmp_path / "wf.db"
    storage = SqliteWorkflowStorage("t", db_file)
    wf = Count(session_id="s", storage=storage)
    for _ in wf.run():
        pass
    before = rows(storage)
    stream = wf.run()
    next(stream)  # the run has started and changed session_state
    with immutable(db_file, Path(f"{db_file}-wal")), caplog.at_level(logging.WARNING, "wfnb"):
        # not -shm: SQLite maps it, and a write into a mapped immutable file is a SIGBUS
        with pytest.raises(StorageError) as raised:
            for _ in stream:
                pass
        check_failed_save(raised.value, "s", "disk I/O error")
        assert wf.session_state == {"n": 2}  # kept in memory for a retry
        stored = storage.read("s")  # reads still work
        assert stored is not None and stored.session_state == {"n": 1}
        assert rows(storage) == before
    assert "could not be recorded" in caplog.text  # the run's end, logged: the save error won
    assert wf.write_to_storage() == 2  # the first retry after recovery works
    stored = storage.read("s")
    assert stored is not None and stored.session_state == {"n": 2}
    for _ in wf.run():  # and runs go on
        pass
    assert storage.read("s").session_state == {"n": 3}  # type: ignore[union-attr]


def test_sqlite_disk_full_mid_run(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "tiny", "1m") as disk:
        if disk is None:
            pytest.skip("mount -t tmpfs is not allowed here (needs root / CAP_SYS_ADMIN)")
        storage = SqliteWorkflowStorage("t", disk.path / "wf.db")
        wf = Count(session_id="s", storage=storage)
        for _ in wf.run():
            pass
        before = rows(storage)
        with pytest.raises(StorageError) as raised:
            for _ in wf.run(pad=2_000_000):  # a 2 MB state on a 1 MB disk
                pass
        check_failed_save(raised.value, "s", "database or disk is full")
        assert wf.session_state["n"] == 2 and len(wf.session_state["pad"]) == 2_000_000
        assert rows(storage) == before
        stored = storage.read("s")
        assert stored is not None and stored.session_state == {"n": 1}
        disk.remount("size=16m")  # space freed
        assert wf.write_to_storage() == 2
        stored = storage.read("s")
        assert stored is not None and len(stored.session_state["pad"]) == 2_000_000
        storage.close()


def test_sqlite_locked_longer_than_busy_timeout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db_file = tmp_path / "wf.db"
    storage = SqliteWorkflowStorage("t", db_file, busy_timeout=0.2)
    wf = Count(session_id="s", storage=storage)
    for _ in wf.run():
        pass
    before = rows(storage)
    other = sqlite3.connect(db_file, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock, for longer than 0.2 s
        with pytest.raises(StorageError, match=r"could not record the run: database is locked "
                                               r"\(table 't', session 's'\)"):
            for _ in wf.run():  # refused before it starts: nothing changed
                pass
        assert wf.session_state == {"n": 1}
        stream = wf.run()
        other.execute("ROLLBACK")
        next(stream)  # started while the lock was free
        other.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        with pytest.raises(StorageError) as raised, caplog.at_level(logging.WARNING, "wfnb"):
            for _ in stream:
                pass
        assert time.monotonic() - started < 5
        check_failed_save(raised.value, "s", "database is locked")
        assert wf.session_state == {"n": 2}
        stored = storage.read("s")  # WAL: reads are not blocked by the writer
        assert stored is not None and stored.session_state == {"n": 1}
        assert rows(storage) == before
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert wf.write_to_storage() == 2
    assert storage.read("s").session_state == {"n": 2}  # type: ignore[union-attr]


# -- PostgreSQL --------------------------------------------------------------------------------


@pytest.fixture
def pg_storage(table_name: str) -> Iterator[tuple[WorkflowStorage, str]]:
    """A PostgreSQL storage whose connections carry their own application_name."""
    from tests.conftest import drop_tables

    name = unique("wfnb_fault")
    storage = WorkflowStorage(table_name, with_application_name(postgres_url(), name))
    yield storage, name
    storage.close()
    drop_tables(postgres_url(), table_name)


@pytest.mark.postgres
def test_postgres_idle_connections_dropped_cost_a_reconnect_not_an_error(
    pg_storage: tuple[WorkflowStorage, str],
) -> None:
    storage, name = pg_storage
    wf = Count(session_id="s", storage=storage)
    for _ in wf.run():
        pass
    assert terminate_backends(name) >= 1
    for _ in wf.run():  # pool_pre_ping notices and reconnects
        pass
    assert storage.read("s").session_state == {"n": 2}  # type: ignore[union-attr]


@pytest.mark.postgres
def test_postgres_connection_dropped_in_the_middle_of_a_save(
    pg_storage: tuple[WorkflowStorage, str],
) -> None:
    storage, name = pg_storage
    wf = Count(session_id="s", storage=storage)
    for _ in wf.run():
        pass
    before = rows(storage)
    wf.session_state["n"] = 2
    failures: list[BaseException] = []

    def save() -> None:
        try:
            wf.write_to_storage()
        except BaseException as error:
            failures.append(error)

    with pg_admin().connect() as blocker:
        blocker.execute(sa.text("BEGIN"))
        blocker.execute(sa.text(f'SELECT * FROM "{storage.table_name}" WHERE session_id = \'s\' '
                                "FOR UPDATE"))  # the save's UPDATE will wait on this row
        saver = threading.Thread(target=save)
        saver.start()
        deadline = time.monotonic() + 30
        while True:  # until the save is inside its transaction, waiting for the row lock
            waiting = blocker.execute(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name "
                "AND wait_event_type = 'Lock'"), {"name": name}).scalar_one()
            if waiting or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert waiting, "the save never waited for the row lock"
        assert terminate_backends(name) >= 1
        saver.join(30)
        blocker.execute(sa.text("ROLLBACK"))
    assert len(failures) == 1
    check_failed_save(failures[0], "s", "the connection is lost")
    assert wf.session_state == {"n": 2} and wf.version == 1
    assert rows(storage) == before  # the transaction was rolled back whole
    assert wf.write_to_storage() == 2  # the dropped connection is not handed out again
    assert storage.read("s").session_state == {"n": 2}  # type: ignore[union-attr]


@pytest.mark.postgres
def test_postgres_row_locked_longer_than_lock_timeout(table_name: str) -> None:
    """PostgreSQL has no busy_timeout: a save waits for a row lock as long as it is held,
    unless the URL sets lock_timeout (libpq options), which this test does."""
    from tests.conftest import drop_tables

    url = sa.engine.make_url(postgres_url()).update_query_dict(
        {"options": "-c lock_timeout=300"}).render_as_string(hide_password=False)
    storage = WorkflowStorage(table_name, url)
    try:
        wf = Count(session_id="s", storage=storage)
        for _ in wf.run():
            pass
        before = rows(storage)
        with pg_admin().connect() as blocker:
            blocker.execute(sa.text("BEGIN"))
            blocker.execute(sa.text(f'SELECT * FROM "{table_name}" WHERE session_id = \'s\' '
                                    "FOR UPDATE"))
            with pytest.raises(StorageError) as raised:
                for _ in wf.run():
                    pass
            check_failed_save(raised.value, "s", "canceling statement due to lock timeout")
            assert wf.session_state == {"n": 2} and rows(storage) == before
            blocker.execute(sa.text("ROLLBACK"))
        assert wf.write_to_storage() == 2
    finally:
        storage.close()
        drop_tables(postgres_url(), table_name)


@pytest.mark.postgres
def test_postgres_lock_waits_are_bounded_by_busy_timeout_by_default(table_name: str) -> None:
    """Without options in the URL, busy_timeout becomes PostgreSQL's lock_timeout."""
    from tests.conftest import drop_tables

    storage = WorkflowStorage(table_name, postgres_url(), busy_timeout=0.3)
    try:
        wf = Count(session_id="s", storage=storage)
        for _ in wf.run():
            pass
        with pg_admin().connect() as blocker:
            blocker.execute(sa.text("BEGIN"))
            blocker.execute(sa.text(f'SELECT * FROM "{table_name}" WHERE session_id = \'s\' '
                                    "FOR UPDATE"))
            with pytest.raises(StorageError, match="lock timeout"):
                for _ in wf.run():
                    pass
            blocker.execute(sa.text("ROLLBACK"))
        assert wf.write_to_storage() == 2
    finally:
        storage.close()
        drop_tables(postgres_url(), table_name)


@pytest.mark.postgres
@pytest.mark.alone
def test_postgres_server_stopped_and_restarted(
    postgres_alone: None, pg_storage: tuple[WorkflowStorage, str]
) -> None:
    cluster = local_cluster()
    if cluster is None:
        pytest.skip("no local PostgreSQL cluster that pg_ctlcluster (as root) can restart")
    storage, _ = pg_storage
    wf = Count(session_id="s", storage=storage)
    for _ in wf.run():
        pass
    pg_ctl("restart", cluster)  # while idle: the next run just reconnects
    wait_for_postgres()
    for _ in wf.run():
        pass
    assert storage.read("s").session_state == {"n": 2}  # type: ignore[union-attr]
    stream = wf.run()
    next(stream)
    try:
        pg_ctl("stop", cluster)  # down in the middle of the run
        with pytest.raises(StorageError) as raised:
            for _ in stream:
                pass
        check_failed_save(raised.value, "s", "connect")
        assert wf.session_state == {"n": 3}
        with pytest.raises(StorageError, match=r"could not save the session: .*session 's'"):
            wf.write_to_storage()
    finally:
        pg_ctl("start", cluster)
        wait_for_postgres()
    before = rows(storage)
    assert before == (1, 2)  # nothing half-written
    assert wf.write_to_storage() == 3
    assert storage.read("s").session_state == {"n": 3}  # type: ignore[union-attr]
