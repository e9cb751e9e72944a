"""Retention: history pruning (keep_versions, storage.prune) racing saves, and disk growth figures.
"""

from __future__ import annotations

import os
import random
import sqlite3
import string
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.reliability._support import Target, record_figure
from wfnb import (
    CorruptStateError,
    SessionConflictError,
    SessionNotFoundError,
    SqliteWorkflowStorage,
    WorkflowStorage,
)
from wfnb.storage import _history
from wfnb.storage._database import Transaction

PAD = "p" * 5000  # past the 4 KB under which states are stored whole: history holds deltas


def counter_state(version: int) -> dict[str, Any]:
    """The state the race test's writers store as ``version`` (one append per version)."""
    return {"count": version - 1, "pad": PAD, "items": [f"v{v}" for v in range(2, version + 1)]}


class Race:
    """Three writers (keep_versions=6: each prunes after its own saves) increment one session
    while a fourth thread prunes it (and all sessions) and a fifth reads listed versions.

    The writers hold their last increment until the reader has read a version: threads are
    scheduled as the machine pleases, and on a loaded one the writers could otherwise finish
    before the reader's first read (then the race had no reads to check).
    """

    def __init__(self, target: Target, increments: int) -> None:
        self.target = target
        self.increments = increments
        self.done = threading.Event()
        self.failures: list[BaseException] = []
        self.successes: list[int] = []
        self.reads = {"ok": 0, "pruned meanwhile": 0}
        self.read_once = threading.Event()

    def run(self) -> None:
        writers = [threading.Thread(target=self.guarded, args=(self.writer,)) for _ in range(3)]
        helpers = [threading.Thread(target=self.guarded, args=(work,))
                   for work in (self.pruner, self.reader)]
        for thread in writers + helpers:
            thread.start()
        for thread in writers:
            thread.join(300)
        self.done.set()
        for thread in helpers:
            thread.join(60)

    def guarded(self, work: Any) -> None:
        try:
            work()
        except BaseException as error:  # reported, and failing the test
            self.failures.append(error)

    def writer(self) -> None:
        storage = self.target.open(keep_versions=6)
        for increment in range(self.increments):
            if increment == self.increments - 1:
                self.read_once.wait(60)
            while True:
                current = storage.read("s")
                assert current is not None
                assert current.session_state == counter_state(current.version)
                try:
                    result = storage.save("s", counter_state(current.version + 1),
                                          expected_version=current.version)
                except SessionConflictError:
                    continue
                self.successes.append(result.version)
                break

    def pruner(self) -> None:
        storage = self.target.open(keep_versions=None)
        rng = random.Random(1)
        while not self.done.is_set():
            storage.prune(keep=rng.randint(1, 4), session_id=rng.choice(["s", None]),
                          older_than=rng.choice([None, None, 0.0]))
            time.sleep(rng.uniform(0, 0.003))

    def reader(self) -> None:
        storage = self.target.open(keep_versions=None)
        rng = random.Random(2)
        while not self.done.is_set():
            version = rng.choice([v.version for v in storage.history("s")])
            try:
                old = storage.read("s", version)
            except SessionNotFoundError:  # pruned between the listing and the read: fine
                self.reads["pruned meanwhile"] += 1
                continue
            except CorruptStateError as error:  # never: a version listed is a version readable
                raise AssertionError(f"version {version} unreadable: {error}") from error
            assert old is not None and old.session_state == counter_state(version)
            self.reads["ok"] += 1
            self.read_once.set()


def test_prune_racing_saves_loses_no_save_and_leaves_every_version_readable(
    target: Target,
) -> None:
    seed = target.open(keep_versions=None)
    seed.save("s", counter_state(1), expected_version=0)
    race = Race(target, increments=40 if target.backend == "postgres" else 80)
    race.run()
    assert not race.failures, repr(race.failures[0])
    total = 3 * race.increments
    assert sorted(race.successes) == list(range(2, total + 2))  # every save, once
    stored = seed.read("s")
    assert stored is not None and stored.version == total + 1
    assert stored.session_state == counter_state(stored.version)
    listed = [v.version for v in seed.history("s")]
    assert listed == list(range(stored.version, stored.version - len(listed), -1))
    for version in listed:
        old = seed.read("s", version)
        assert old is not None and old.session_state == counter_state(version)
    assert race.reads["ok"] > 0
    record_figure(f"prune racing saves, {target.backend}",
                  f"{total} saves by 3 writers, none lost; {race.reads['ok']} reads of listed "
                  f"versions ok, {race.reads['pruned meanwhile']} found them pruned meanwhile")


def test_a_read_racing_a_save_and_prune_sees_one_consistent_version(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the read of the session row and the read of its history rows, another writer
    saves and prunes the version just read. Was, on PostgreSQL (each statement its own
    snapshot): CorruptStateError "version 2 is recorded but the rows ... are missing"."""
    storage = target.open(keep_versions=None)
    other = target.open(keep_versions=None)
    storage.save("s", counter_state(1), expected_version=0)
    other.save("s", counter_state(2), expected_version=1)
    fresh = target.open(keep_versions=None)  # nothing cached: the read goes to the rows
    read_session_row = Transaction.session

    def meddling(tx: Transaction, session_id: str) -> Any:
        row = read_session_row(tx, session_id)
        if tx.db is fresh._database:  # version 2 is current... until now
            other.save("s", counter_state(3), expected_version=2)
            assert other.prune(keep=1, session_id="s") == 2
        return row

    monkeypatch.setattr(Transaction, "session", meddling)
    stored = fresh.read("s")  # either what was current when it began, or what is current now
    monkeypatch.undo()
    assert stored is not None
    assert stored.session_state == counter_state(stored.version)
    assert [v.version for v in fresh.history("s")] == [3]


def test_two_prunes_of_one_session_at_once_take_turns(target: Target) -> None:
    """A second prune runs while the first is rebuilding the oldest version it keeps. Was, on
    PostgreSQL: the second deleted the rows the first was reading (SessionNotFoundError out of
    prune), or the two deadlocked; now the second waits for the first."""
    storage = target.open(keep_versions=None)
    for version in range(1, 11):  # version 1 whole, 2-10 deltas
        storage.save("s", counter_state(version), expected_version=version - 1)
    other = target.open(keep_versions=None)
    second: list[threading.Thread] = []
    read_chain = Transaction.chain

    def meddle(tx: Transaction, session_id: str, version: int) -> Any:
        if tx.db is storage._database and not second:  # rebuilding version 8
            second.append(threading.Thread(target=other.prune, kwargs={"keep": 1}))
            second[0].start()
            second[0].join(1.0)  # finishes at once if nothing makes it wait
        return read_chain(tx, session_id, version)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Transaction, "chain", meddle)
        dropped = storage.prune(keep=3, session_id="s")
    second[0].join(30)
    assert dropped == 7
    assert [v.version for v in storage.history("s")] == [10]
    stored = storage.read("s", 10)
    assert stored is not None and stored.session_state == counter_state(10)


def test_keep_versions_prunes_in_batches_not_after_every_save(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was: once past keep + slack versions, every save ran a prune transaction (and, the first
    version kept being a delta, rewrote a full state): 10x slower saves with keep_versions=100."""
    calls: list[int] = []
    prune_session = _history.prune_session

    def counted(*args: Any) -> int:
        calls.append(1)
        return prune_session(*args)

    monkeypatch.setattr(_history, "prune_session", counted)
    storage = target.open(keep_versions=10)
    for version in range(1, 201):
        storage.save("s", {"n": version, "pad": PAD}, expected_version=version - 1)
        assert 1 <= len(storage.history("s")) <= 10 + 8
    assert len(calls) <= 200 // 8 + 1, f"{len(calls)} prunes for 200 saves"


def test_a_save_whose_follow_up_prune_fails_still_reports_the_save(
    target: Target, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """keep_versions prunes in its own transaction after the save committed. Was: a failure
    there (locked, deadlock) raised StorageError from save(), so the caller took a committed
    save for a failed one, and its retry conflicted with itself."""
    storage = target.open(keep_versions=2)

    def broken(*_args: Any) -> int:
        raise sa.exc.OperationalError("DELETE ...", {}, Exception("database is locked"))

    for version in range(1, 11):
        if version == 2 + 8:
            monkeypatch.setattr(_history, "prune_session", broken)
        assert storage.save("s", {"n": version}, expected_version=version - 1).version == version
    assert "saved as version 10, but pruning its history failed (database is locked)" in (
        caplog.text)
    monkeypatch.undo()
    for version in range(11, 19):  # the next batch prunes
        storage.save("s", {"n": version}, expected_version=version - 1)
    assert [v.version for v in storage.history("s")] == [18, 17]


def file_size(db_file: Path) -> int:
    """The database file plus its -wal, after PRAGMA wal_checkpoint(TRUNCATE)."""
    connection = sqlite3.connect(db_file)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    return sum(os.path.getsize(p) for p in (db_file, Path(f"{db_file}-wal")) if p.exists())


def grow(storage: WorkflowStorage, style: str, saves: int) -> tuple[int, float]:
    """``saves`` saves of one session; (final state bytes, seconds)."""
    rng = random.Random(1)
    state: dict[str, Any] = {"count": 0, "items": [], "note": ""}
    began = time.perf_counter()
    for version in range(1, saves + 1):
        state["count"] = version
        if style == "append":  # ~100 bytes appended per save
            state["items"].append(f"item {version}: " + "".join(rng.choices(string.ascii_letters,
                                                                             k=90)))
        else:  # a 2 KB value replaced per save
            state["note"] = "".join(rng.choices(string.ascii_letters, k=2000))
        storage.save("s", state, expected_version=version - 1)
    elapsed = time.perf_counter() - began
    stored = storage.read("s")
    assert stored is not None and stored.version == saves and stored.session_state == state
    return stored.state_bytes, elapsed


def test_disk_growth_over_1000_saves_with_and_without_keep_versions(tmp_path: Path) -> None:
    sizes: dict[tuple[str, int | None], int] = {}
    lines = []
    for style in ("append", "rewrite"):
        for keep in (None, 100):
            db_file = tmp_path / f"{style}-{keep}.db"
            storage = SqliteWorkflowStorage("t", db_file, keep_versions=keep)
            state_bytes, elapsed = grow(storage, style, 1000)
            kept = len(storage.history("s"))
            storage.close()
            sizes[style, keep] = file_size(db_file)
            lines.append(f"{style} keep_versions={keep}: state {state_bytes / 1000:.0f} KB, "
                         f"{kept} versions kept, file {sizes[style, keep] / 1e6:.2f} MB, "
                         f"1000 saves in {elapsed:.2f}s")
    assert sizes["rewrite", 100] < sizes["rewrite", None] / 4
    assert sizes["append", 100] < sizes["append", None]
    record_figure("disk growth, sqlite, 1000 saves", "; ".join(lines))


@pytest.mark.slow
@pytest.mark.postgres
def test_disk_growth_on_postgresql(table_name: str) -> None:
    from tests.conftest import drop_tables, postgres_url

    lines = []
    for style in ("append", "rewrite"):
        for keep in (None, 100):
            name = f"{table_name}_{style[0]}{keep or 0}"
            storage = WorkflowStorage(name, postgres_url(), keep_versions=keep)
            try:
                state_bytes, elapsed = grow(storage, style, 1000)
                engine = storage.db.engine
                assert engine is not None
                with engine.connect() as conn:
                    size = sum(conn.execute(sa.text(
                        f"SELECT pg_total_relation_size('\"{name}{suffix}\"')")).scalar_one()
                        for suffix in ("", "_versions"))
                lines.append(f"{style} keep_versions={keep}: state {state_bytes / 1000:.0f} KB,"
                             f" tables {size / 1e6:.2f} MB (before VACUUM), 1000 saves in "
                             f"{elapsed:.2f}s")
            finally:
                storage.close()
                drop_tables(postgres_url(), name)
    record_figure("disk growth, postgres, 1000 saves", "; ".join(lines))
