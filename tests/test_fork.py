"""storage.fork on SQLite and PostgreSQL: the fork holds exactly the state of the version asked
for (deltas, tagged types, the current one), says where it came from, and the source is left
byte for byte as it was. Peers got this wrong: LangGraph #8551 forked the wrong state, aegra
PR #321 re-ran from the wrong checkpoint, Burr #580 lost typed state on a fork."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from tests.conftest import StorageFactory
from tests.test_storage import versions_table
from wfnb import (
    ImportFormatError,
    InvalidNameError,
    SessionConflictError,
    SessionExistsError,
    SessionNotFoundError,
    StorageError,
    Workflow,
    WorkflowStorage,
    step,
)
from wfnb.storage import _schema
from wfnb.storage._database import Transaction

SUFFIXES = ("", "_versions", "_runs", "_steps")


def typed_history(storage: WorkflowStorage, session_id: str = "src", saves: int = 12) -> None:
    """A session whose states hold tagged types and are large enough to be stored as deltas."""
    state: dict[str, Any] = {
        "posts": [], "when": dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone.utc),
        "pair": (1, "two"), "raw": b"\x00\xff", "price": Decimal("1.10"), "tags": {"a", "b"},
        "id": uuid.UUID(int=7), "text": "naïve \u0000 ☃",
    }
    for version in range(1, saves + 1):
        state = {**state, "posts": [*state["posts"], {"n": version, "body": "é" * 400}],
                 "count": version}
        storage.save(session_id, state, expected_version=version - 1, workflow_name="Blog",
                     source="run", run_id=f"run-{version}")
    storage.record_run_start("r1", session_id, "Blog", {"topic": "pasta"})
    storage.record_run_end("r1", status="completed", output="ok", version=saves,
                           session_id=session_id)


def raw_rows(storage: WorkflowStorage, session_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every column of every row the session has in each table, bytes as stored."""
    rows = {}
    assert storage.db.engine is not None
    with storage.db.engine.connect() as conn:
        for suffix in SUFFIXES:
            table = f"{storage.table_name}{suffix}"
            columns = [c["name"] for c in sa.inspect(conn).get_columns(table)]
            rows[suffix] = [
                tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                for row in conn.execute(sa.text(
                    f'SELECT {", ".join(columns)} FROM "{table}" WHERE session_id = :sid '
                    f"ORDER BY {', '.join(columns[:2])}"), {"sid": session_id})
            ]
    return rows


def test_a_fork_holds_exactly_the_state_of_each_version_asked_for(
    storage: WorkflowStorage,
) -> None:
    typed_history(storage)
    deltas = {row.version for row in versions_table(storage) if row.base_version is not None}
    assert {5, 11} <= deltas  # versions rebuilt from a full row and deltas
    for version in (1, 5, 11, 12):
        forked = storage.fork("src", version, f"fork-{version}")
        source, copy = storage.read("src", version), storage.read(f"fork-{version}")
        assert source is not None and copy is not None
        assert copy.document == source.document  # the stored bytes, not merely equal values
        assert copy.session_state == source.session_state
        assert copy.session_state["count"] == version
        assert copy.session_state["pair"] == (1, "two") and copy.session_state["tags"] == {"a", "b"}
        assert (forked.session_id, forked.version, forked.source) == (f"fork-{version}", 1, "fork")
        assert (forked.forked_from_session, forked.forked_from_version) == ("src", version)
        assert copy.workflow_name == "Blog" and copy.version == 1


def test_without_a_version_the_current_one_is_forked(storage: WorkflowStorage) -> None:
    typed_history(storage, saves=6)
    forked = storage.fork("src")
    assert str(uuid.UUID(forked.session_id)) == forked.session_id  # a fresh uuid4
    assert forked.forked_from_version == 6
    copy, source = storage.read(forked.session_id), storage.read("src")
    assert copy is not None and source is not None and copy.document == source.document


def test_the_source_is_left_byte_for_byte_as_it_was(storage: WorkflowStorage) -> None:
    typed_history(storage)
    before = raw_rows(storage, "src")
    assert before["_versions"] and before["_runs"]
    storage.fork("src", 3, "try-2")
    storage.save("try-2", {"other": "path"}, expected_version=1)
    assert raw_rows(storage, "src") == before
    assert [v.version for v in storage.history("src")] == list(range(12, 0, -1))


def test_the_forks_history_says_where_it_came_from(storage: WorkflowStorage) -> None:
    storage.save("src", {"n": 1}, expected_version=0)
    storage.save("src", {"n": 2}, expected_version=1)
    storage.fork("src", 1, "f")
    storage.save("f", {"n": 10}, expected_version=1, source="edit")
    history = storage.history("f")
    assert [(v.version, v.source, v.forked_from_session, v.forked_from_version)
            for v in history] == [(2, "edit", None, None), (1, "fork", "src", 1)]
    assert all(v.forked_from_session is None for v in storage.history("src"))


def test_runs_and_step_records_are_not_copied(storage: WorkflowStorage) -> None:
    """A fork is for another path: its steps of session scope run again, they are not served
    from the source's records (which would replay the source's path)."""
    calls: list[str] = []

    class Drafts(Workflow):
        @step
        def draft(self, topic: str) -> str:
            calls.append(topic)
            return f"draft about {topic}"

        def run(self, topic: str) -> str:
            self.session_state["draft"] = self.draft(topic)
            return str(self.session_state["draft"])

    Drafts(session_id="src", storage=storage).run("pasta")
    Drafts(session_id="src", storage=storage).run("pasta")  # served: the body ran once
    assert calls == ["pasta"]
    storage.fork("src", None, "f")
    assert storage.runs("f") == [] and storage.steps("f") == []
    fork = Drafts(session_id="f", storage=storage)
    assert fork.session_state == {"draft": "draft about pasta"}
    fork.run("pasta")
    assert calls == ["pasta", "pasta"]
    assert len(storage.steps("src")) == 2


def test_unknown_sessions_and_versions_are_not_found(storage: WorkflowStorage) -> None:
    with pytest.raises(SessionNotFoundError, match="no session 'nobody'"):
        storage.fork("nobody", None, "f")
    for version in range(1, 6):
        storage.save("src", {"n": "x" * 100 + str(version)}, expected_version=version - 1)
    storage.prune(keep=2, session_id="src")
    for missing in (1, 3, 6):  # pruned, pruned, never saved
        with pytest.raises(SessionNotFoundError, match=f"no version {missing}"):
            storage.fork("src", missing, "f")
    assert storage.read("f") is None and storage.history("f") == []
    with pytest.raises(InvalidNameError):
        storage.fork("src", None, "")


def test_a_taken_id_is_refused_and_never_overwritten(storage: WorkflowStorage) -> None:
    storage.save("src", {"n": 1}, expected_version=0)
    storage.save("taken", {"mine": True}, expected_version=0)
    storage.save("taken", {"mine": "still"}, expected_version=1)
    before = raw_rows(storage, "taken")
    with pytest.raises(SessionExistsError, match="'taken' is already in table") as raised:
        storage.fork("src", 1, "taken")
    assert isinstance(raised.value, SessionConflictError)
    assert raised.value.stored_version == 2
    assert raw_rows(storage, "taken") == before
    with pytest.raises(SessionExistsError):
        storage.fork("src", 1, "src")  # onto itself
    assert len(storage.history("src")) == 1


def test_an_id_deleted_before_numbers_on_after_its_last_version(
    storage: WorkflowStorage,
) -> None:
    storage.save("src", {"n": 1}, expected_version=0)
    for version in range(3):
        storage.save("old", {"v": version}, expected_version=version)
    storage.delete("old")
    forked = storage.fork("src", 1, "old")
    assert forked.version == 4
    stored = storage.read("old")
    assert stored is not None and (stored.version, stored.session_state) == (4, {"n": 1})
    assert storage.save("old", {"n": 2}, expected_version=4).version == 5


def test_another_storage_object_sees_the_fork_and_can_save_onto_it(
    make_storage: StorageFactory,
) -> None:
    ours, theirs = make_storage(), make_storage()
    typed_history(ours, saves=4)
    ours.fork("src", 2, "f")
    stored = theirs.read("f")
    source = theirs.read("src", 2)
    assert stored is not None and source is not None and stored.document == source.document
    result = theirs.save("f", {**stored.session_state, "count": 99}, expected_version=1)
    assert result.version == 2 and not result.merged_keys
    assert ours.read("src").session_state["count"] == 4  # type: ignore[union-attr]


def test_the_origin_survives_export_and_import(
    storage: WorkflowStorage, second: WorkflowStorage, tmp_path: Path
) -> None:
    typed_history(storage, saves=5)
    storage.fork("src", 3, "f")
    storage.save("f", {"n": 1}, expected_version=1)
    path = tmp_path / "out.jsonl"
    storage.export_sessions(path, ["f"])
    second.import_sessions(path)
    assert second.history("f") == storage.history("f")
    assert second.history("f")[-1].forked_from_session == "src"
    assert second.read("f", 1).document == storage.read("src", 3).document  # type: ignore[union-attr]


def test_an_import_file_without_origins_still_imports_and_a_half_origin_is_refused(
    storage: WorkflowStorage, second: WorkflowStorage, tmp_path: Path
) -> None:
    storage.save("src", {"n": 1}, expected_version=0)
    storage.fork("src", 1, "f")
    path = tmp_path / "out.jsonl"
    storage.export_sessions(path, ["f"])
    record = orjson.loads(path.read_bytes())
    assert record["history"][0]["forked_from_session"] == "src"
    for entry in record["history"]:  # as wfnb wrote files before forks
        del entry["forked_from_session"], entry["forked_from_version"]
    old = tmp_path / "old.jsonl"
    old.write_bytes(orjson.dumps(record) + b"\n")
    record["history"][0]["forked_from_session"] = "src"
    half = tmp_path / "half.jsonl"
    half.write_bytes(orjson.dumps(record) + b"\n")
    with pytest.raises(ImportFormatError, match=r"line 1: history\[0\]\.forked_from_session"):
        second.import_sessions(half)
    second.import_sessions(old)
    assert second.history("f")[0].forked_from_session is None


def test_a_schema_6_table_is_upgraded_and_its_history_still_reads(
    make_storage: StorageFactory,
) -> None:
    old = make_storage()
    old.save("src", {"n": 1}, expected_version=0)
    old.save("src", {"n": 2}, expected_version=1)
    assert old.db.engine is not None
    with old.db.engine.begin() as conn:  # as wfnb before schema 7 left it
        for column in ("forked_from_session", "forked_from_version"):
            conn.execute(sa.text(f'ALTER TABLE "{old.table_name}_versions" DROP COLUMN {column}'))
        conn.execute(sa.text(f"UPDATE \"{old.table_name}_meta\" SET value = '6' "
                             "WHERE key = 'schema_version'"))
    old.close()
    upgraded = make_storage()
    assert upgraded.schema_version == _schema.MIGRATIONS[-1][0] >= 7
    assert [(v.version, v.forked_from_session) for v in upgraded.history("src")] == [
        (2, None), (1, None)]
    assert upgraded.fork("src", 1, "f").forked_from_version == 1
    assert upgraded.read("f").session_state == {"n": 1}  # type: ignore[union-attr]


def test_forks_racing_for_one_id_make_it_once(make_storage: StorageFactory) -> None:
    make_storage().save("src", {"n": 1, "pad": "x" * 5000}, expected_version=0)
    outcomes: list[str] = []

    def fork_once() -> None:
        try:
            make_storage().fork("src", 1, "same")
            outcomes.append("made")
        except SessionExistsError:
            outcomes.append("refused")

    threads = [threading.Thread(target=fork_once) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["made"] + ["refused"] * 5
    assert [v.version for v in make_storage().history("same")] == [1]


def test_a_fork_that_fails_half_way_leaves_nothing_behind(
    storage: WorkflowStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage.save("src", {"n": 1}, expected_version=0)

    def fail(*_args: Any, **_kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(Transaction, "insert_version", fail)
    with pytest.raises(StorageError, match="could not fork the session: disk full"):
        storage.fork("src", 1, "f")
    monkeypatch.undo()
    assert storage.read("f") is None and storage.history("f") == []
    assert storage.fork("src", 1, "f").version == 1  # the id was never taken
