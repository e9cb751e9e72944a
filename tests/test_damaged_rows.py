"""One damaged row (written directly with SQL, as an old version or another tool might) is
listed as damaged and never takes a whole listing down: storage, `wfnb`, the inspector.
SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from tests.test_cli import run_wfnb
from wfnb import StateInspector, WorkflowStorage


@pytest.fixture
def damaged(storage: WorkflowStorage) -> WorkflowStorage:
    """Sessions "good" and "bad" (updated_at 1e300, created_at -1e15) and a run of "bad" whose
    input is not JSON and whose start is 1e300."""
    storage.save("good", {"a": 1}, expected_version=0)
    storage.save("bad", {"b": 2}, expected_version=0)
    storage.record_run_start("run-ok", "bad", "W", {"topic": "pasta"})
    storage.record_run_start("run-bad", "bad", "W", {"topic": "x"})
    with storage.db.engine.begin() as conn:  # type: ignore[union-attr]
        conn.execute(sa.text(
            f'UPDATE "{storage.table_name}" SET updated_at = 1e300, created_at = -1e15 '
            "WHERE session_id = 'bad'"
        ))
        conn.execute(sa.text(
            f"UPDATE \"{storage.table_name}_runs\" SET input = '{{not json', started_at = 1e300 "
            "WHERE run_id = 'run-bad'"
        ))
    return storage


def test_storage_lists_a_damaged_row_as_damaged(damaged: WorkflowStorage) -> None:
    listed = {s.session_id: s for s in damaged.list_sessions()}
    assert listed["good"].damaged is None
    assert listed["bad"].damaged == (
        "created_at -1000000000000000.0 is not a time; updated_at 1e+300 is not a time"
    )
    runs = {r.run_id: r for r in damaged.runs("bad")}
    assert runs["run-ok"].damaged is None and runs["run-ok"].input == {"topic": "pasta"}
    assert runs["run-bad"].damaged == "input is not JSON; started_at 1e+300 is not a time"
    assert runs["run-bad"].input == "{not json"  # the stored text, as it is


def test_cli_lists_a_damaged_row_as_damaged(
    damaged: WorkflowStorage, db_args: list[str], tmp_path: Path
) -> None:
    listing = run_wfnb(*db_args, "sessions", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "damaged: created_at" in listing.stdout and "good" in listing.stdout
    as_json = run_wfnb(*db_args, "sessions", "--json", cwd=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    assert len(orjson.loads(as_json.stdout)["sessions"]) == 2
    runs = run_wfnb(*db_args, "runs", "bad", cwd=tmp_path)
    assert runs.returncode == 0, runs.stderr
    assert "damaged: input is not JSON" in runs.stdout and "run-ok" in runs.stdout
    exported = run_wfnb(*db_args, "export", "-o", str(tmp_path / "out.jsonl"), cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr


def test_inspector_lists_a_damaged_row_as_damaged(damaged: WorkflowStorage) -> None:
    inspector = StateInspector(damaged, session_id="bad")
    try:
        labels = [label for label, _ in inspector.view.rows.options]
        assert any("bad" in label and "(damaged)" in label for label in labels)
        assert "damaged: input is not JSON" in inspector.view.runs_html.value
    finally:
        inspector.close()
