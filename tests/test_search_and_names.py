"""Search means the same on SQLite and PostgreSQL, refuses text no id can hold, and a table name
whose family clashes with another program's tables is refused when the storage is opened."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import StorageFactory, drop_tables, postgres_url
from tests.test_cli import ROOT
from wfnb import InvalidNameError, SqliteWorkflowStorage, StorageError, WorkflowStorage
from wfnb.notebook._inspector import StateInspector

IDS = ["Alpha", "alpha", "ALPHA-2", "Ärger", "ärger", "50%_off", "50x-off", "5_0", "a\\b", "beta"]


@pytest.fixture
def named(storage: WorkflowStorage) -> WorkflowStorage:
    for session_id in IDS:
        storage.save(session_id, {}, expected_version=0, workflow_name="W")
    return storage


@pytest.mark.parametrize(("text", "found"), [
    ("alpha", ["ALPHA-2", "Alpha", "alpha"]),  # ASCII letters in either case
    ("aLpHa-", ["ALPHA-2"]),
    ("ärger", ["ärger"]), ("Ä", ["Ärger"]),  # any other character exactly, on both backends
    ("%", ["50%_off"]), ("_", ["50%_off", "5_0"]), ("50%_", ["50%_off"]),  # wildcards literal
    ("5_", ["5_0"]), ("\\", ["a\\b"]), ("A\\B", ["a\\b"]), ("", sorted(IDS)),
])
def test_search_ignores_ascii_case_and_takes_wildcards_literally(
    named: WorkflowStorage, text: str, found: list[str]
) -> None:
    listed = sorted(s.session_id for s in named.list_sessions(search=text, limit=100))
    assert listed == sorted(found)
    assert named.count_sessions(search=text) == len(found)


@pytest.mark.parametrize(("text", "words"), [
    ("\x00", "NUL"), ("a\x00", "NUL"), ("\udcff", "lone surrogate"),
])
def test_search_text_no_id_can_hold_is_refused(
    named: WorkflowStorage, text: str, words: str
) -> None:
    calls = (lambda: named.list_sessions(search=text), lambda: named.count_sessions(search=text),
             lambda: named.list_sessions(workflow_name=text))
    for call in calls:
        with pytest.raises(InvalidNameError, match=words) as refused:
            call()
        assert isinstance(refused.value, ValueError)
    inspector = StateInspector(named)
    try:
        assert not inspector.search(text)
        assert inspector.status.startswith("search failed: search text")
        assert words in inspector.status
    finally:
        inspector.close()


def test_the_command_line_refuses_a_search_that_is_not_text(
    named: WorkflowStorage, db_args: list[str], tmp_path: Path
) -> None:
    argv = [os.fsencode(arg) for arg in [*db_args, "sessions", "--search"]] + [b"al\xffpha"]
    result = subprocess.run([sys.executable.encode(), b"-m", b"wfnb", *argv], cwd=tmp_path,
                            capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(b"wfnb: error: search text 'al\\udcffpha' is not valid UTF-8")


# -- names -------------------------------------------------------------------------------------


FOREIGN = {
    "": "CREATE TABLE {name} (id INTEGER PRIMARY KEY, title TEXT)",
    "_versions": "CREATE TABLE {name} (session_id TEXT, version INTEGER)",
    "_runs": "CREATE TABLE {name} (id INTEGER, what TEXT)",
    "_steps": "CREATE TABLE {name} (id INTEGER, step TEXT)",
    "_meta": "CREATE TABLE {name} (k TEXT, v TEXT)",
}


@pytest.fixture
def url(backend: str, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'shared.db'}" if backend == "sqlite" else postgres_url()


@pytest.mark.parametrize("suffix", list(FOREIGN))
def test_a_table_family_clashing_with_another_programs_table_is_refused_on_open(
    url: str, table_name: str, suffix: str
) -> None:
    engine = sa.create_engine(url)
    clashing = table_name + suffix
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(FOREIGN[suffix].format(name=f'"{clashing}"')))
        with pytest.raises(StorageError, match=f"table '{clashing}' exists but is not wfnb's"):
            WorkflowStorage(table_name, url)
        with engine.connect() as conn:  # nothing was created beside it
            names = set(sa.inspect(conn).get_table_names())
        assert {table_name + s for s in FOREIGN} & names == {clashing}
    finally:
        engine.dispose()
        if url.startswith("postgresql"):
            drop_tables(url, table_name)


def test_wfnbs_own_family_opens_again_and_its_neighbours_are_left_alone(
    make_storage: StorageFactory, tmp_path: Path
) -> None:
    storage = make_storage()
    storage.save("s", {"a": 1}, expected_version=0)
    storage.close()
    again = make_storage()
    stored = again.read("s")
    assert stored is not None and stored.session_state == {"a": 1}
    beside = SqliteWorkflowStorage("other", tmp_path / "other.db")  # no family, no clash
    beside.close()
