"""Import all or nothing, within what the target and the rest of wfnb can hold, and compact.

Each bad line is the second of a file: the first, good session must not land either, and the
tables keep exactly the rows they had. Then the good file imports. SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from tests.conftest import StorageFactory, drop_tables, postgres_url
from wfnb import SqliteWorkflowStorage, WorkflowStorage
from wfnb._errors import ImportFormatError
from wfnb.storage import _transfer
from wfnb.storage._codec import MAX_DEPTH

Record = dict[str, Any]


@pytest.fixture
def target(backend: str, make_storage: StorageFactory) -> Iterator[WorkflowStorage]:
    """Another table in the same database (dropped afterwards), holding one session."""
    name = f"wf_{uuid.uuid4().hex[:12]}"
    storage = make_storage(table_name=name)
    storage.save("mine", {"x": 1}, expected_version=0)
    storage.record_run_start("my-run", "mine", None, {"a": 1})
    yield storage
    if backend == "postgres":
        drop_tables(postgres_url(), name)


@pytest.fixture
def records(storage: WorkflowStorage, tmp_path: Path) -> list[Record]:
    """Two exported sessions, the second with a run."""
    storage.save("first", {"n": 1}, expected_version=0, workflow_name="W")
    storage.save("second", {"n": 2}, expected_version=0, workflow_name="W")
    storage.record_run_start("run-1", "second", "W", {"topic": "pasta"})
    storage.record_run_end("run-1", status="completed", output="done", version=1,
                           session_id="second", input_tokens=3, output_tokens=4)
    path = tmp_path / "good.jsonl"
    storage.export_sessions(str(path))
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def row_counts(storage: WorkflowStorage) -> dict[str, int]:
    with storage.db.engine.connect() as conn:  # type: ignore[union-attr]
        return {
            suffix: conn.execute(sa.text(
                f'SELECT count(*) FROM "{storage.table_name}{suffix}"'
            )).scalar_one()
            for suffix in ("", "_versions", "_runs")
        }


def write(path: Path, records: list[Record]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records))
    return path


def deep(levels: int) -> str:
    """A stored state whose document nests ``levels`` deep."""
    return '{"k":' + "[" * (levels - 1) + "]" * (levels - 1) + "}"


def _set(record: Record, **fields: Any) -> None:
    record.update(fields)


def _version(record: Record, value: int) -> None:
    record["version"] = record["history"][-1]["version"] = value


def _run(record: Record, **fields: Any) -> None:
    record["runs"][0].update(fields)


def _deep_state(record: Record) -> None:
    record["state"] = record["history"][-1]["state"] = deep(MAX_DEPTH + 1)


Change = Callable[[Record], None]
BAD: list[tuple[str, Change, str]] = [
    ("version 2**31", lambda r: _version(r, 2**31), r"version should be 1 to 2147483647"),
    ("history version 2**31",
     lambda r: r["history"][-1].update(version=2**31), r"history\[0\]\.version should be"),
    ("NUL in workflow_name", lambda r: _set(r, workflow_name="W\x00"),
     r"workflow_name .* contains a NUL"),
    ("NUL in a run error", lambda r: _run(r, error="boom\x00"), r"runs\[0\]\.error .* NUL"),
    ("NUL in a source", lambda r: r["history"][0].update(source="s\x00"),
     r"history\[0\]\.source .* NUL"),
    ("1 MB run id", lambda r: _run(r, run_id="r" * 2**20),
     r"runs\[0\]\.run_id should be 1 to 1024 bytes"),
    ("tokens too big for SQLite", lambda r: _run(r, input_tokens=2**63),
     r"runs\[0\]\.input_tokens should be 0 to"),
    ("negative tokens", lambda r: _run(r, output_tokens=-1), r"runs\[0\]\.output_tokens"),
    ("run version too big", lambda r: _run(r, version=2**40), r"runs\[0\]\.version should be"),
    ("updated_at 1e300", lambda r: _set(r, updated_at=1e300), r"updated_at = 1e\+300 is not"),
    ("created_at -1e15", lambda r: _set(r, created_at=-1e15),
     r"created_at = -1000000000000000.0 is not"),
    ("run ended_at 1e300", lambda r: _run(r, ended_at=1e300), r"runs\[0\]\.ended_at"),
    ("history time -1e15", lambda r: r["history"][0].update(created_at=-1e15),
     r"history\[0\]\.created_at"),
    ("run input not JSON", lambda r: _run(r, input="{not json"),
     r"runs\[0\]\.input is not JSON"),
    ("state too deep", _deep_state, r"state nests deeper than 254 levels"),
]


@pytest.mark.parametrize(("change", "message"), [case[1:] for case in BAD],
                         ids=[case[0] for case in BAD])
def test_a_bad_line_names_line_and_field_and_writes_nothing(
    target: WorkflowStorage, records: list[Record], tmp_path: Path, change: Change,
    message: str,
) -> None:
    before = row_counts(target)
    good = write(tmp_path / "good.jsonl", records)
    bad_records = orjson.loads(orjson.dumps(records))
    change(bad_records[1])
    bad = write(tmp_path / "bad.jsonl", bad_records)
    with pytest.raises(ImportFormatError, match="bad.jsonl, line 2: " + message):
        target.import_sessions(str(bad))
    assert row_counts(target) == before
    assert [s.session_id for s in target.list_sessions()] == ["mine"]
    report = target.import_sessions(str(good))  # re-running after a failure works
    assert sorted(report.imported) == ["first", "second"]


def test_the_deepest_state_a_save_stores_imports(
    target: WorkflowStorage, records: list[Record], tmp_path: Path
) -> None:
    records[1]["state"] = records[1]["history"][-1]["state"] = deep(MAX_DEPTH)
    target.import_sessions(str(write(tmp_path / "deep.jsonl", records)))
    stored = target.read("second")
    assert stored is not None and stored.state_json == deep(MAX_DEPTH)


def test_a_line_past_the_bound_is_refused_unread(
    target: WorkflowStorage, records: list[Record], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_transfer, "MAX_LINE", 1000)
    records[1]["workflow_name"] = "w" * 2000
    before = row_counts(target)
    with pytest.raises(ImportFormatError, match=r"long.jsonl, line 2: longer than 1000 bytes"):
        target.import_sessions(str(write(tmp_path / "long.jsonl", records)))
    assert row_counts(target) == before


def test_an_existing_session_late_in_the_file_rolls_back_the_earlier_ones(
    target: WorkflowStorage, records: list[Record], tmp_path: Path
) -> None:
    target.save("second", {"theirs": 1}, expected_version=0)
    before = row_counts(target)
    with pytest.raises(Exception, match="line 2: session 'second' is already in table"):
        target.import_sessions(str(write(tmp_path / "file.jsonl", records)))
    assert row_counts(target) == before


def test_a_run_id_taken_late_in_the_file_rolls_back_the_earlier_ones(
    target: WorkflowStorage, records: list[Record], tmp_path: Path
) -> None:
    records[1]["runs"][0]["run_id"] = "my-run"
    before = row_counts(target)
    with pytest.raises(Exception, match="line 2: run 'my-run' of session 'second'"):
        target.import_sessions(str(write(tmp_path / "file.jsonl", records)))
    assert row_counts(target) == before


def test_the_file_is_read_once(
    target: WorkflowStorage, records: list[Record], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened: list[str] = []
    real_open = open

    def counting_open(path: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    path = write(tmp_path / "file.jsonl", records)
    monkeypatch.setattr(_transfer, "open", counting_open, raising=False)
    target.import_sessions(str(path))
    assert opened == [str(path)]


def test_a_round_trip_of_300_saves_keeps_the_database_size(tmp_path: Path) -> None:
    """The issue's scenario: 300 saves of a growing state. Full copies made it 15x."""
    source = SqliteWorkflowStorage("wf", tmp_path / "source.db")
    state: dict[str, Any] = {"count": 0, "log": []}
    for i in range(300):
        state["count"] = i
        state["log"].append({"step": i, "note": f"step {i} " + "x" * 80})
        source.save("s", state, expected_version=i)
    path = tmp_path / "export.jsonl"
    source.export_sessions(str(path))
    copy = SqliteWorkflowStorage("wf", tmp_path / "copy.db")
    copy.import_sessions(str(path))
    assert copy.history("s", limit=None) == source.history("s", limit=None)
    assert [copy.read("s", v) for v in (1, 150, 300)] == [source.read("s", v)
                                                         for v in (1, 150, 300)]
    sizes = [database_bytes(storage) for storage in (source, copy)]
    source.close()
    copy.close()
    print(f"300 saves: {sizes[0] / 1e6:.2f} MB, after a round trip {sizes[1] / 1e6:.2f} MB "
          f"({sizes[1] / sizes[0]:.2f}x); export file {path.stat().st_size / 1e6:.2f} MB")
    assert sizes[1] <= 1.5 * sizes[0]


def database_bytes(storage: WorkflowStorage) -> int:
    """The SQLite database's size in use (pages in use, free pages left out)."""
    with storage.db.engine.connect() as conn:  # type: ignore[union-attr]
        pages = conn.execute(sa.text("PRAGMA page_count")).scalar_one()
        free = conn.execute(sa.text("PRAGMA freelist_count")).scalar_one()
        size = conn.execute(sa.text("PRAGMA page_size")).scalar_one()
    return int((pages - free) * size)
