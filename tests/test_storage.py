"""WorkflowStorage on SQLite and PostgreSQL: compare-and-swap saves, merges, history, listing."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import StorageFactory, drop_tables, postgres_url
from wfnb import (
    CorruptStateError,
    InvalidNameError,
    SchemaVersionError,
    SessionConflictError,
    SessionNotFoundError,
    SqliteWorkflowStorage,
    StorageError,
    UnstorableStateError,
    WorkflowStorage,
)
from wfnb.storage import _schema


def versions_table(storage: WorkflowStorage) -> list[Any]:
    with storage.db.engine.connect() as conn:  # type: ignore[union-attr]
        return list(conn.execute(sa.text(
            f'SELECT version, base_version FROM "{storage.table_name}_versions" ORDER BY version'
        )))


def test_read_of_unknown_session_is_none(storage: WorkflowStorage) -> None:
    assert storage.read("nobody") is None


def test_first_save_creates_version_1_and_reads_back(storage: WorkflowStorage) -> None:
    result = storage.save("s", {"a": [1, 2], "b": "text"}, expected_version=0, workflow_name="wf")
    stored = storage.read("s")
    assert result.version == 1 and result.written
    assert stored is not None
    assert stored.session_state == {"a": [1, 2], "b": "text"}
    assert (stored.version, stored.workflow_name, stored.session_id) == (1, "wf", "s")
    assert stored.created_at <= stored.updated_at


def test_save_on_a_stale_version_of_the_same_key_conflicts(storage: WorkflowStorage) -> None:
    storage.save("s", {"count": 0}, expected_version=0)
    storage.save("s", {"count": 1}, expected_version=1)
    with pytest.raises(SessionConflictError, match="'count'") as raised:
        storage.save("s", {"count": 1}, expected_version=1)  # same value, still a lost update
    assert (raised.value.keys, raised.value.stored_version) == (["count"], 2)
    stored = storage.read("s")
    assert stored is not None and stored.version == 2


def test_two_writers_of_different_keys_merge(storage: WorkflowStorage) -> None:
    storage.save("s", {"a": 1, "b": 1}, expected_version=0)
    storage.save("s", {"a": 2, "b": 1}, expected_version=1)
    result = storage.save("s", {"a": 1, "b": 1, "c": 3}, expected_version=1)
    assert result.merged_keys == ("a",)
    assert result.session_state == {"a": 2, "b": 1, "c": 3}
    stored = storage.read("s")
    assert stored is not None and stored.session_state == {"a": 2, "b": 1, "c": 3}


def test_merge_keeps_a_key_deleted_by_the_other_writer_deleted(storage: WorkflowStorage) -> None:
    storage.save("s", {"a": 1, "b": 1}, expected_version=0)
    storage.save("s", {"a": 1}, expected_version=1)
    storage.save("s", {"a": 1, "b": 1, "c": 1}, expected_version=1)
    stored = storage.read("s")
    assert stored is not None and stored.session_state == {"a": 1, "c": 1}


def test_two_new_sessions_with_the_same_id_merge_disjoint_keys(storage: WorkflowStorage) -> None:
    storage.save("s", {"a": 1}, expected_version=0)
    result = storage.save("s", {"b": 2}, expected_version=0)
    assert result.session_state == {"a": 1, "b": 2}


def test_force_overwrites_a_newer_version(storage: WorkflowStorage) -> None:
    storage.save("s", {"a": 1}, expected_version=0)
    storage.save("s", {"a": 2}, expected_version=1)
    result = storage.save("s", {"a": 9}, expected_version=1, force=True)
    stored = storage.read("s")
    assert result.version == 3
    assert stored is not None and stored.session_state == {"a": 9}


def test_saving_a_session_deleted_meanwhile_conflicts(storage: WorkflowStorage) -> None:
    storage.save("s", {"a": 1}, expected_version=0)
    storage.delete("s")
    with pytest.raises(SessionConflictError, match="deleted"):
        storage.save("s", {"a": 2}, expected_version=1)
    assert storage.save("s", {"a": 2}, expected_version=1, force=True).version == 1


def test_unchanged_state_writes_no_version(storage: WorkflowStorage) -> None:
    storage.save("s", {"a": 1}, expected_version=0)
    result = storage.save("s", {"a": 1}, expected_version=1)
    assert (result.version, result.written) == (1, False)
    assert len(storage.history("s")) == 1


def test_unstorable_value_raises_before_anything_is_written(storage: WorkflowStorage) -> None:
    storage.save("s", {"posts": [{"when": "now"}]}, expected_version=0)
    with pytest.raises(UnstorableStateError) as raised:
        storage.save("s", {"posts": [{"when": object()}]}, expected_version=1)
    assert raised.value.path == 'session_state["posts"][0]["when"]'
    stored = storage.read("s")
    assert stored is not None
    assert (stored.version, stored.session_state) == (1, {"posts": [{"when": "now"}]})


def test_history_lists_versions_newest_first_with_source(storage: WorkflowStorage) -> None:
    for version in range(3):
        storage.save("s", {"n": version}, expected_version=version, source="edit", run_id="r")
    history = storage.history("s")
    assert [v.version for v in history] == [3, 2, 1]
    assert {(v.source, v.run_id) for v in history} == {("edit", "r")}


def test_every_version_reads_back_from_delta_history(storage: WorkflowStorage) -> None:
    expected: list[dict[str, Any]] = []
    state: dict[str, Any] = {"count": 0, "posts": []}
    for version in range(1, 41):
        state = {"count": version, "posts": [*state["posts"], {"n": version, "text": "é" * 300}]}
        storage.save("s", state, expected_version=version - 1)
        expected.append(state)
    rows = versions_table(storage)
    assert sum(row.base_version is not None for row in rows) >= 30  # mostly deltas
    for version, state_then in enumerate(expected, start=1):
        old = storage.read("s", version)
        assert old is not None and old.session_state == state_then and old.version == version


def test_reading_a_version_not_in_history_raises(storage: WorkflowStorage) -> None:
    storage.save("s", {"a": 1}, expected_version=0)
    storage.save("s", {"a": 2}, expected_version=1)
    with pytest.raises(SessionNotFoundError, match="no version 7"):
        storage.read("s", 7)


def test_restore_appends_a_new_version_equal_to_the_old_one(storage: WorkflowStorage) -> None:
    for version in range(3):
        storage.save("s", {"n": version}, expected_version=version)
    result = storage.restore("s", 1)
    stored = storage.read("s")
    assert result.version == 4
    assert stored is not None and stored.session_state == {"n": 0}
    assert [v.source for v in storage.history("s")][:1] == ["restore"]
    assert len(storage.history("s")) == 4  # nothing rewritten


def test_restore_against_a_stale_version_conflicts(storage: WorkflowStorage) -> None:
    for version in range(3):
        storage.save("s", {"n": version}, expected_version=version)
    with pytest.raises(SessionConflictError):
        storage.restore("s", 1, expected_version=2)


def test_keep_versions_bounds_history_and_keeps_it_readable(make_storage: StorageFactory) -> None:
    storage = make_storage(keep_versions=5)
    state: dict[str, Any] = {"posts": []}
    for version in range(1, 41):
        state = {"posts": [*state["posts"], "x" * 200]}
        storage.save("s", state, expected_version=version - 1)
        kept = [v.version for v in storage.history("s")]
        assert kept == list(range(version, max(version - len(kept), 0), -1))
        assert min(version, 5) <= len(kept) <= 5 + 8  # pruned in batches of at most 8
    rows = versions_table(storage)
    assert rows[0].base_version is None  # the oldest kept is a full state
    oldest = storage.read("s", rows[0].version)
    assert oldest is not None and len(oldest.session_state["posts"]) == rows[0].version


def test_prune_keep_and_older_than(storage: WorkflowStorage) -> None:
    for version in range(10):
        storage.save("s", {"n": "x" * 100 + str(version)}, expected_version=version)
    assert storage.prune(keep=4) == 6
    assert [v.version for v in storage.history("s")] == [10, 9, 8, 7]
    assert storage.prune(older_than=0) == 3  # the current version always stays
    assert [v.version for v in storage.history("s")] == [10]
    stored = storage.read("s", 10)
    assert stored is not None and stored.session_state == {"n": "x" * 100 + "9"}


def test_a_session_deleted_and_created_again_is_not_mistaken_for_the_cached_one(
    make_storage: StorageFactory,
) -> None:
    """Writer A's cache holds version 1 of a session that B then deletes and creates again (a
    new version 1). Was: A's save of its own version-1 state reported "unchanged" and wrote
    nothing, and A's next save stored a delta on A's old document over B's, a state nobody
    saved. Now A's saves are checked against the stored row's creation time."""
    ours, theirs = make_storage(), make_storage()
    ours.save("s", {"b": ""}, expected_version=0)
    theirs.delete("s")
    theirs.save("s", {"b": None}, expected_version=0)
    result = ours.save("s", {"b": ""}, expected_version=1)
    assert (result.version, result.written) == (2, True)
    assert make_storage().read("s").session_state == {"b": ""}  # type: ignore[union-attr]

    ours.save("t", {"pad": "x" * 5000, "n": 1}, expected_version=0)  # large: saved as deltas
    theirs.delete("t")
    theirs.save("t", {"pad": "y" * 5000, "n": 1}, expected_version=0)
    ours.save("t", {"pad": "x" * 5000, "n": 2}, expected_version=1)
    stored = make_storage().read("t")
    assert stored is not None and stored.session_state == {"pad": "x" * 5000, "n": 2}


def test_delete_removes_session_history_and_runs(storage: WorkflowStorage) -> None:
    storage.save("s", {"a": 1}, expected_version=0)
    storage.record_run_start("r1", "s", "wf", {"x": 1})
    assert storage.delete("s") is True
    assert storage.read("s") is None
    assert storage.history("s") == [] and storage.runs("s") == []
    assert storage.delete("s") is False


def test_delete_with_a_stale_expected_version_refuses(storage: WorkflowStorage) -> None:
    storage.save("s", {"a": 1}, expected_version=0)
    storage.save("s", {"a": 2}, expected_version=1)
    with pytest.raises(SessionConflictError):
        storage.delete("s", expected_version=1)
    assert storage.read("s") is not None


def test_list_sessions_pages_newest_first(storage: WorkflowStorage) -> None:
    for index in range(7):
        storage.save(f"s{index}", {"i": index}, expected_version=0, workflow_name="wf")
    first = storage.list_sessions(limit=3)
    second = storage.list_sessions(limit=3, offset=3)
    assert [s.session_id for s in first] == ["s6", "s5", "s4"]
    assert [s.session_id for s in second] == ["s3", "s2", "s1"]
    assert storage.count_sessions() == 7


def test_list_sessions_searches_ids_literally_and_filters_workflow(
    storage: WorkflowStorage,
) -> None:
    storage.save("a_1", {}, expected_version=0, workflow_name="one")
    storage.save("ab1", {}, expected_version=0, workflow_name="two")
    storage.save("100%", {}, expected_version=0, workflow_name="two")
    assert [s.session_id for s in storage.list_sessions(search="_")] == ["a_1"]
    assert [s.session_id for s in storage.list_sessions(search="%")] == ["100%"]
    assert {s.session_id for s in storage.list_sessions(workflow_name="two")} == {"ab1", "100%"}
    assert storage.count_sessions(search="1", workflow_name="two") == 2


def test_workflow_names_are_listed_once_each(storage: WorkflowStorage) -> None:
    for session_id, name in [("a", "beta"), ("b", "alpha"), ("c", "beta"), ("d", None)]:
        storage.save(session_id, {}, expected_version=0, workflow_name=name)
    assert storage.workflow_names() == ["alpha", "beta"]


def test_list_sessions_does_not_read_states(storage: WorkflowStorage) -> None:
    storage.save("s", {"big": "x" * 1000}, expected_version=0)
    statements: list[str] = []

    def capture(*args: Any) -> None:
        statements.append(args[2])

    engine = storage.db.engine
    assert engine is not None
    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        summaries = storage.list_sessions()
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    assert summaries[0].state_bytes == len('{"big":"' + "x" * 1000 + '"}')
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert selects and not any(re.search(r"\.state\b(?!_)|\bstate,", s) for s in selects)


def test_runs_are_recorded_with_status_input_and_output(storage: WorkflowStorage) -> None:
    storage.record_run_start("r1", "s", "wf", {"topic": "pasta", "when": object()})
    storage.record_run_end("r1", status="completed", output="hello", version=3)
    (run,) = storage.runs("s")
    assert (run.run_id, run.status, run.output, run.version) == ("r1", "completed", "hello", 3)
    assert run.input["topic"] == "pasta" and run.input["when"].startswith("<object")
    assert run.ended_at is not None and run.ended_at >= run.started_at


def test_runs_record_the_tokens_a_model_used(storage: WorkflowStorage) -> None:
    storage.record_run_start("r1", "s", "wf", {})
    storage.record_run_end("r1", status="completed", output="hi", input_tokens=12,
                           output_tokens=30)
    storage.record_run_start("r2", "s", "wf", {})
    storage.record_run_end("r2", status="completed", output="hi")
    assert [(run.input_tokens, run.output_tokens) for run in storage.runs("s")] in (
        [(None, None), (12, 30)], [(12, 30), (None, None)])


def test_a_database_from_before_token_counts_is_upgraded(make_storage: StorageFactory) -> None:
    old = make_storage()
    old.record_run_start("r1", "s", "wf", {})
    runs = f"{old.table_name}_runs"
    with old.db.engine.begin() as conn:  # type: ignore[union-attr]
        for column in ("input_tokens", "output_tokens"):  # as schema 1 created the table
            conn.execute(sa.text(f'ALTER TABLE "{runs}" DROP COLUMN {column}'))
        conn.execute(sa.text(
            f"UPDATE \"{old.table_name}_meta\" SET value = '1' WHERE key = 'schema_version'"))
    old.close()
    upgraded = make_storage()
    upgraded.record_run_end("r1", status="completed", output="hi", input_tokens=5,
                            output_tokens=7)
    (run,) = upgraded.runs("s")
    newest = _schema.MIGRATIONS[-1][0]  # the token columns' migration, and any after it
    assert (upgraded.schema_version, run.input_tokens, run.output_tokens) == (newest, 5, 7)


@pytest.mark.parametrize(
    "name", ["", "1abc", "x;DROP TABLE y", 'a"b', "tbl name", "é", "a" * 47, None, 5]
)
def test_unsafe_table_names_are_refused(name: Any, tmp_path: Path) -> None:
    with pytest.raises(InvalidNameError, match="table_name"):
        SqliteWorkflowStorage(name, tmp_path / "x.db")
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("session_id", ["", "x" * 1025, "nul\x00", None, 3])
def test_unusable_session_ids_are_refused(storage: WorkflowStorage, session_id: Any) -> None:
    with pytest.raises(InvalidNameError, match="session_id"):
        storage.save(session_id, {}, expected_version=0)


@pytest.mark.parametrize(
    "session_id", ["it's", 'say "hi"', "a; DROP TABLE x; --", "日本語 🎉", "x" * 1024, "%_\\"]
)
def test_hostile_session_ids_are_stored_as_plain_data(
    storage: WorkflowStorage, session_id: str
) -> None:
    storage.save(session_id, {"ok": True}, expected_version=0)
    stored = storage.read(session_id)
    assert stored is not None and stored.session_state == {"ok": True}
    assert [s.session_id for s in storage.list_sessions(search=session_id)] == [session_id]


def test_a_hand_corrupted_row_fails_only_that_session(make_storage: StorageFactory) -> None:
    make_storage().save("bad", {"a": 1}, expected_version=0)
    storage = make_storage()  # another process: nothing cached
    storage.save("good", {"a": 1}, expected_version=0)
    with storage.db.engine.begin() as conn:  # type: ignore[union-attr]
        conn.execute(
            sa.text(f'UPDATE "{storage.table_name}_versions" SET data = :data '
                    "WHERE session_id = 'bad'"),
            {"data": b'{"a":1'},
        )
    with pytest.raises(CorruptStateError, match="'bad'"):
        storage.read("bad")
    good = storage.read("good")
    assert good is not None and good.session_state == {"a": 1}
    assert len(storage.list_sessions()) == 2


def test_a_lost_full_row_under_deltas_is_reported_as_damage(make_storage: StorageFactory) -> None:
    writer = make_storage()
    state: dict[str, Any] = {"log": ["x" * 300] * 20}
    for version in range(1, 5):
        state = {"log": [*state["log"], f"entry {version}"]}
        writer.save("s", state, expected_version=version - 1)
    assert versions_table(writer)[1].base_version == 1  # version 2 is a delta on version 1
    with writer.db.engine.begin() as conn:  # type: ignore[union-attr]
        conn.execute(sa.text(f'DELETE FROM "{writer.table_name}_versions" WHERE version = 1'))
    reader = make_storage()  # another process: nothing cached
    with pytest.raises(CorruptStateError, match="rows it is rebuilt from are missing"):
        reader.read("s")
    with pytest.raises(CorruptStateError, match="version 3"):
        reader.read("s", 3)
    with pytest.raises(SessionNotFoundError, match="no version 9"):
        reader.read("s", 9)


def test_reopening_is_idempotent_and_keeps_data(make_storage: StorageFactory) -> None:
    make_storage().save("s", {"a": 1}, expected_version=0)
    reopened = make_storage()
    stored = reopened.read("s")
    assert reopened.schema_version == _schema.MIGRATIONS[-1][0]
    assert stored is not None and stored.session_state == {"a": 1}


def test_a_newer_schema_version_is_refused(make_storage: StorageFactory) -> None:
    storage = make_storage()
    storage.save("s", {"a": 1}, expected_version=0)
    with storage.db.engine.begin() as conn:  # type: ignore[union-attr]
        conn.execute(sa.text(
            f"UPDATE \"{storage.table_name}_meta\" SET value = '99' WHERE key = 'schema_version'"
        ))
    with pytest.raises(SchemaVersionError, match="schema version 99"):
        make_storage()


def test_a_later_migration_upgrades_an_older_database(
    make_storage: StorageFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_storage().save("s", {"a": 1}, expected_version=0)
    applied: list[str] = []

    def add_label_column(conn: sa.Connection, tables: _schema.Tables) -> None:
        conn.execute(sa.text(f'ALTER TABLE "{tables.name}" ADD COLUMN label TEXT'))
        applied.append(tables.name)

    later = _schema.MIGRATIONS[-1][0] + 1
    monkeypatch.setattr(_schema, "MIGRATIONS", [*_schema.MIGRATIONS, (later, add_label_column)])
    monkeypatch.setattr("wfnb.storage._database.MIGRATIONS", _schema.MIGRATIONS)
    upgraded = make_storage()
    again = make_storage()
    stored = again.read("s")
    assert (upgraded.schema_version, again.schema_version, len(applied)) == (later, later, 1)
    assert stored is not None and stored.session_state == {"a": 1}


def test_concurrent_threads_never_lose_an_increment(make_storage: StorageFactory) -> None:
    storage = make_storage()
    storage.save("s", {"count": 0}, expected_version=0)
    done: list[int] = []

    def work() -> None:
        mine = make_storage()
        for _ in range(15):
            while True:
                current = mine.read("s")
                assert current is not None
                state = {"count": current.session_state["count"] + 1}
                try:
                    mine.save("s", state, expected_version=current.version)
                except SessionConflictError:
                    continue
                done.append(1)
                break

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = storage.read("s")
    assert stored is not None and stored.session_state["count"] == len(done) == 60
    assert [v.version for v in storage.history("s")] == list(range(61, 0, -1))


def test_sqlite_pragmas_are_set(tmp_path: Path) -> None:
    storage = SqliteWorkflowStorage("t", tmp_path / "deep" / "er" / "wf.db", busy_timeout=7)
    with storage.db.engine.connect() as conn:  # type: ignore[union-attr]
        pragma = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "busy_timeout")
        }
    assert pragma == {"journal_mode": "wal", "synchronous": 1, "busy_timeout": 7000}


def test_db_file_that_is_a_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match="is a directory"):
        SqliteWorkflowStorage("t", tmp_path)


def test_unwritable_database_raises_storage_error_naming_session(tmp_path: Path) -> None:
    db_file = tmp_path / "wf.db"
    storage = SqliteWorkflowStorage("t", db_file)
    storage.save("s", {"a": 1}, expected_version=0)
    storage.close()
    readonly = WorkflowStorage("t", f"sqlite:///file:{db_file}?mode=ro&uri=true")
    with pytest.raises(StorageError, match=r"could not save the session: .*session 's'"):
        readonly.save("s", {"a": 2}, expected_version=1)
    stored = readonly.read("s")
    assert stored is not None and stored.session_state == {"a": 1}


@pytest.mark.postgres
def test_postgres_keeps_a_jsonb_copy_of_the_current_state(table_name: str) -> None:
    url = postgres_url()
    storage = WorkflowStorage(table_name, url)
    try:
        storage.save("s", {"posts": [{"topic": "pasta"}]}, expected_version=0)
        storage.save("s", {"posts": [{"topic": "soup"}]}, expected_version=1)
        storage.save("nul", {"text": "a\x00b"}, expected_version=0)
        with storage.db.engine.connect() as conn:  # type: ignore[union-attr]
            rows = dict(conn.execute(sa.text(
                f"SELECT session_id, state -> 'posts' -> 0 ->> 'topic' FROM \"{table_name}\""
            )).all())
        assert rows == {"s": "soup", "nul": None}
        stored = storage.read("nul")
        assert stored is not None and stored.session_state == {"text": "a\x00b"}
    finally:
        storage.close()
        drop_tables(url, table_name)
