"""Export and import of sessions as JSON lines, and to_dataframe, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from tests.conftest import drop_tables, postgres_url
from wfnb import CorruptStateError, SessionNotFoundError, SqliteWorkflowStorage, WorkflowStorage
from wfnb._errors import ImportConflictError, ImportFormatError
from wfnb.storage import _frame


def seed(storage: WorkflowStorage) -> None:
    """Three sessions: one with tagged types, deltas in history and two runs (one failed), one
    empty, one whose history was pruned to its last two versions."""
    state: dict[str, Any] = {
        "posts": [], "when": dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone.utc),
        "pair": (1, "two"), "raw": b"\x00\xff", "price": Decimal("1.10"), "big": 1e16,
        "text": "naïve \u0000 ☃",
    }
    version = 0
    for i in range(6):
        state["posts"].append({"topic": f"topic {i}", "blog_post": "lorem ipsum " * 200})
        version = storage.save("alpha", state, expected_version=version, source="run",
                               workflow_name="BlogPostGenerator", run_id=f"run-{i}").version
    storage.record_run_start("run-ok", "alpha", "BlogPostGenerator", {"topic": "pasta"})
    storage.record_run_end("run-ok", status="completed", output="done", version=6,
                           session_id="alpha", input_tokens=12, output_tokens=30)
    storage.record_run_start("run-bad", "alpha", "BlogPostGenerator", {"topic": 1.5})
    storage.record_run_end("run-bad", status="failed", output=None, error="ValueError: boom",
                           session_id="alpha")
    storage.save("beta", {}, expected_version=0)
    version = 0
    for i in range(5):
        version = storage.save("gamma", {"count": i}, expected_version=version,
                               workflow_name="Counter").version
    storage.prune(keep=2, session_id="gamma")


def snapshot(storage: WorkflowStorage) -> dict[str, Any]:
    """Everything stored about every session: current, each version read back, history, runs."""
    return {
        s.session_id: (
            storage.read(s.session_id),
            [storage.read(s.session_id, v.version) for v in storage.history(s.session_id)],
            storage.history(s.session_id),
            storage.runs(s.session_id),
        )
        for s in storage.list_sessions(limit=1000)
    }


def base_versions(storage: WorkflowStorage) -> list[int | None]:
    with storage.db.engine.connect() as conn:  # type: ignore[union-attr]
        return list(conn.execute(sa.text(
            f'SELECT base_version FROM "{storage.table_name}_versions" ORDER BY session_id, version'
        )).scalars())


@pytest.fixture
def exported(storage: WorkflowStorage, tmp_path: Path) -> Path:
    seed(storage)
    path = tmp_path / "sessions.jsonl"
    assert storage.export_sessions(str(path)) == 3
    return path


def lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_export_then_import_reproduces_every_session_exactly(
    storage: WorkflowStorage, second: WorkflowStorage, exported: Path
) -> None:
    report = second.import_sessions(str(exported))
    assert sorted(report.imported) == ["alpha", "beta", "gamma"]
    assert snapshot(second) == snapshot(storage)
    assert session_rows(second) == session_rows(storage)


def test_sqlite_to_postgres_and_back_keeps_states_histories_and_runs(tmp_path: Path) -> None:
    url = postgres_url()
    name = f"wf_{uuid.uuid4().hex[:12]}"
    source = SqliteWorkflowStorage("wf", tmp_path / "source.db")
    seed(source)
    there = tmp_path / "there.jsonl"
    source.export_sessions(str(there))
    postgres = WorkflowStorage(name, url)
    back = SqliteWorkflowStorage("wf", tmp_path / "back.db")
    try:
        assert sorted(postgres.import_sessions(str(there)).imported) == ["alpha", "beta", "gamma"]
        assert snapshot(postgres) == snapshot(source)
        assert base_versions(postgres) == base_versions(source)
        again = tmp_path / "back.jsonl"
        postgres.export_sessions(str(again))
        back.import_sessions(str(again))
        assert snapshot(back) == snapshot(source)
        assert session_rows(back) == session_rows(source)
    finally:
        for storage in (source, postgres, back):
            storage.close()
        drop_tables(url, name)


def session_rows(storage: WorkflowStorage) -> list[Any]:
    """The session rows as stored (on PostgreSQL with the JSONB copy of the state)."""
    with storage.db.engine.connect() as conn:  # type: ignore[union-attr]
        return [tuple(row) for row in conn.execute(sa.text(
            f'SELECT * FROM "{storage.table_name}" ORDER BY session_id'
        ))]


def test_export_holds_every_version_as_the_state_stored(
    storage: WorkflowStorage, exported: Path
) -> None:
    assert any(base is not None for base in base_versions(storage))  # history has deltas
    alpha = next(line for line in lines(exported) if line["session_id"] == "alpha")
    assert [h["version"] for h in alpha["history"]] == [1, 2, 3, 4, 5, 6]
    assert [h["state"] for h in alpha["history"]] == [
        storage.read("alpha", v).state_json for v in range(1, 7)  # type: ignore[union-attr]
    ]
    assert alpha["state"] == alpha["history"][-1]["state"]
    assert '"$wfnb"' in alpha["state"]  # tagged types stay tagged
    assert [r["run_id"] for r in alpha["runs"]] == ["run-ok", "run-bad"]


def test_pruned_history_exports_the_versions_kept(exported: Path) -> None:
    gamma = next(line for line in lines(exported) if line["session_id"] == "gamma")
    assert [(h["version"], h["state"]) for h in gamma["history"]] == [
        (4, '{"count":3}'), (5, '{"count":4}')
    ]


def test_import_stores_history_as_the_saves_stored_it(
    storage: WorkflowStorage, second: WorkflowStorage, exported: Path
) -> None:
    second.import_sessions(str(exported))
    assert any(base is not None for base in base_versions(second))  # deltas, not full copies
    assert base_versions(second) == base_versions(storage)


def test_import_fails_on_an_existing_session_and_writes_nothing(
    second: WorkflowStorage, exported: Path
) -> None:
    second.save("beta", {"mine": 1}, expected_version=0)
    with pytest.raises(ImportConflictError, match="'beta'"):
        second.import_sessions(str(exported))
    assert [s.session_id for s in second.list_sessions()] == ["beta"]
    assert second.read("beta").session_state == {"mine": 1}  # type: ignore[union-attr]


def test_import_skip_leaves_existing_sessions_alone(
    second: WorkflowStorage, exported: Path
) -> None:
    second.save("beta", {"mine": 1}, expected_version=0)
    report = second.import_sessions(str(exported), on_conflict="skip")
    assert (sorted(report.imported), report.skipped) == (["alpha", "gamma"], ["beta"])
    assert second.read("beta").session_state == {"mine": 1}  # type: ignore[union-attr]


def test_import_new_version_appends_the_file_state(
    storage: WorkflowStorage, second: WorkflowStorage, exported: Path
) -> None:
    second.save("alpha", {"mine": 1}, expected_version=0)
    second.save("beta", {}, expected_version=0)
    report = second.import_sessions(str(exported), on_conflict="new-version")
    assert (report.appended, report.unchanged) == (["alpha"], ["beta"])
    alpha = second.read("alpha")
    assert alpha is not None and alpha.version == 2
    assert alpha.state_json == storage.read("alpha").state_json  # type: ignore[union-attr]
    assert second.history("alpha")[0].source == "import"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda line: b"{not json", "line 2: not JSON"),
        (lambda line: line.replace(b'"wfnb":1', b'"wfnb":2'), "format 2"),
        (lambda line: line.replace(b'"version":1,', b'"version":"1",'), "version should be int"),
        (lambda line: line.replace(b'"source":"save"', b'"source":null'), "source should be str"),
        (lambda line: line.replace(b'"state":"{}"', b'"state":"[]"'), "not a stored wfnb state"),
    ],
)
def test_import_refuses_a_malformed_line_naming_it_and_writes_nothing(
    storage: WorkflowStorage, second: WorkflowStorage, tmp_path: Path, change: Any, message: str
) -> None:
    storage.save("a", {"x": 1}, expected_version=0)
    storage.save("beta", {}, expected_version=0)
    good = tmp_path / "good.jsonl"
    storage.export_sessions(str(good), ["a", "beta"])
    first, second_line = good.read_bytes().splitlines()
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(first + b"\n" + change(second_line) + b"\n")
    with pytest.raises(ImportFormatError, match=message):
        second.import_sessions(str(bad))
    assert second.list_sessions() == []


def test_import_refuses_a_session_twice_in_the_file(
    storage: WorkflowStorage, second: WorkflowStorage, tmp_path: Path
) -> None:
    storage.save("a", {"x": 1}, expected_version=0)
    path = tmp_path / "twice.jsonl"
    storage.export_sessions(str(path))
    path.write_bytes(path.read_bytes() * 2)
    with pytest.raises(ImportFormatError, match="line 2: session 'a' appears twice"):
        second.import_sessions(str(path))


def test_import_refuses_a_run_id_already_stored(
    second: WorkflowStorage, exported: Path
) -> None:
    second.record_run_start("run-ok", "orphan", None, None)
    with pytest.raises(ImportConflictError, match="run 'run-ok'"):
        second.import_sessions(str(exported))
    assert second.list_sessions() == []


def test_export_of_an_unknown_session_raises_before_writing(
    storage: WorkflowStorage, tmp_path: Path
) -> None:
    storage.save("a", {}, expected_version=0)
    with pytest.raises(SessionNotFoundError, match="'nobody'"):
        storage.export_sessions(str(tmp_path / "out.jsonl"), ["a", "nobody"])
    assert (tmp_path / "out.jsonl").read_bytes() == b""


def test_export_raises_on_a_broken_history_instead_of_skipping_versions(
    storage: WorkflowStorage, tmp_path: Path
) -> None:
    seed(storage)
    with storage._database.transaction("damage history", write=True) as tx:
        tx.execute(sa.text(
            f'DELETE FROM "{storage.table_name}_versions" '
            "WHERE session_id = 'alpha' AND version = 1"
        ))
    with pytest.raises((CorruptStateError, SessionNotFoundError), match="version 2"):
        storage.export_sessions(str(tmp_path / "out.jsonl"), ["alpha"])


def test_to_dataframe_has_a_row_per_session_and_a_column_per_state_key(
    storage: WorkflowStorage,
) -> None:
    pytest.importorskip("pandas")
    seed(storage)
    frame = _frame.to_dataframe(  # two sessions per query
        storage._database, storage._sessions, chunk_size=2
    )
    assert list(frame["session_id"]) == [s.session_id for s in storage.list_sessions()]
    assert list(frame.columns[:5]) == list(_frame.DATAFRAME_COLUMNS)
    assert {"state.posts", "state.when", "state.count"} <= set(frame.columns)
    alpha = frame[frame["session_id"] == "alpha"].iloc[0]
    assert alpha["state.pair"] == (1, "two") and alpha["version"] == 6


def test_to_dataframe_filters_like_list_sessions(storage: WorkflowStorage) -> None:
    pytest.importorskip("pandas")
    seed(storage)
    assert list(storage.to_dataframe(workflow_name="Counter")["session_id"]) == ["gamma"]
    assert list(storage.to_dataframe(search="et")["session_id"]) == ["beta"]
    assert list(storage.to_dataframe(search="zzz").columns) == list(_frame.DATAFRAME_COLUMNS)


def test_to_dataframe_without_pandas_says_how_to_get_it(
    storage: WorkflowStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        storage.to_dataframe()
