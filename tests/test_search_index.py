"""Trigram indexes for session search (schema 4): PostgreSQL's pg_trgm index, created on open
and on upgrade, used by the search query, with a clear fallback when the extension cannot be
created; SQLite's FTS5 trigram table, kept in step with the sessions by triggers."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import StorageFactory
from wfnb import WorkflowStorage
from wfnb.storage import _schema, _search


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:  # each test names its backend
    marker = request.node.get_closest_marker("postgres")
    if marker is not None:
        from tests.conftest import postgres_url

        postgres_url()
        return "postgres"
    return "sqlite"


def test_sqlite_searches_through_its_trigram_table_kept_by_triggers(
    storage: WorkflowStorage,
) -> None:
    for sid in ("Alpha-One", "alpha_two", "beta", "100%_x", "Ünïcode-ALPHA"):
        storage.save(sid, {}, expected_version=0)
    storage.delete("beta")
    storage.save("beta", {}, expected_version=0)  # a new row: the trigger indexes it again
    storage.delete("alpha_two")
    engine = storage.db.engine
    assert engine is not None
    search = f"{storage.table_name}_search"
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f'SELECT folded FROM "{search}" ORDER BY folded')).scalars()
        assert list(rows) == ["100%_x", "alpha-one", "beta", "Ünïcode-alpha"]
        plan = conn.execute(sa.text(
            f'EXPLAIN QUERY PLAN SELECT rowid FROM "{search}" WHERE "{search}" MATCH \'"lph"\'')
        ).all()
    assert any("VIRTUAL TABLE" in str(row) for row in plan)

    def found(text: str) -> list[str]:
        return sorted(s.session_id for s in storage.list_sessions(search=text))

    assert found("ALPHA") == ["Alpha-One", "Ünïcode-ALPHA"]
    assert found("%_x") == ["100%_x"] and found("0%_") == ["100%_x"]
    assert found("ünï") == [] and found("Ünï") == ["Ünïcode-ALPHA"]  # only A-Z fold
    assert found("ET") == ["beta"] and found("a_t") == []  # short: the LIKE scan, same rule
    assert storage.count_sessions(search="alpha") == 2


def _indexes(storage: WorkflowStorage) -> set[str]:
    assert storage.db.engine is not None
    with storage.db.engine.connect() as conn:
        return set(conn.execute(sa.text("SELECT indexname FROM pg_indexes WHERE tablename = :t"),
                                {"t": storage.table_name}).scalars())


def _search_plan(storage: WorkflowStorage, text: str) -> str:
    """EXPLAIN of the statement ``list_sessions(search=text)`` finds a rare text with (seq
    scans off, as a table of a million rows would make the planner choose): its first look,
    through the newest rows, holds less than a page, so it then takes every match."""
    engine = storage.db.engine
    assert engine is not None
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "LIKE" in statement:
            seen.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        storage.list_sessions(search=text)
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    recent, (statement, parameters) = seen
    assert "recent" in recent[0] and "matches" in statement
    with engine.connect() as conn:
        driver: Any = conn.connection.driver_connection
        with driver.cursor() as cursor:
            cursor.execute("SET enable_seqscan = off")
            cursor.execute("EXPLAIN " + statement, parameters)
            return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.postgres
def test_search_uses_the_trigram_index(storage: WorkflowStorage) -> None:
    for n in range(50):
        storage.save(f"Report-{n:03d}", {}, expected_version=0)
    assert f"ix_{storage.table_name}_id_trgm" in _indexes(storage)
    assert f"ix_{storage.table_name}_id_trgm" in _search_plan(storage, "ORT-04")
    found = [s.session_id for s in storage.list_sessions(search="ORT-04", limit=100)]
    assert found == [f"Report-{n:03d}" for n in range(49, 39, -1)]


@pytest.mark.postgres
def test_an_existing_schema_3_table_gets_the_index_on_open(make_storage: StorageFactory) -> None:
    old = make_storage()
    old.save("keep-me", {"a": 1}, expected_version=0)
    assert old.db.engine is not None
    with old.db.engine.begin() as conn:  # as wfnb before schema 4 left it
        conn.execute(sa.text(f'DROP INDEX "ix_{old.table_name}_id_trgm"'))
        conn.execute(sa.text(f"UPDATE \"{old.table_name}_meta\" SET value = '3' "
                             "WHERE key = 'schema_version'"))
    upgraded = make_storage()
    assert upgraded.schema_version == _schema.MIGRATIONS[-1][0]
    assert f"ix_{old.table_name}_id_trgm" in _indexes(upgraded)
    assert [s.session_id for s in upgraded.list_sessions(search="KEEP")] == ["keep-me"]


@pytest.mark.postgres
def test_without_the_extension_the_upgrade_warns_and_search_still_works(
    make_storage: StorageFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a real failure from the server: an extension it does not have (as without privileges)
    monkeypatch.setattr(_search, "TRIGRAM_EXTENSION", "wfnb_no_such_extension")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        storage = make_storage()
    (warning,) = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    text = str(warning.message)
    assert "no trigram index for session search" in text and storage.table_name in text
    assert "CREATE EXTENSION IF NOT EXISTS wfnb_no_such_extension" in text
    assert storage.schema_version == _schema.MIGRATIONS[-1][0]
    assert f"ix_{storage.table_name}_id_trgm" not in _indexes(storage)
    storage.save("a_B", {}, expected_version=0)
    storage.save("aXb", {}, expected_version=0)
    assert [s.session_id for s in storage.list_sessions(search="A_b")] == ["a_B"]


def test_an_existing_sqlite_schema_3_table_gets_its_search_table_on_open(
    make_storage: StorageFactory,
) -> None:
    old = make_storage()
    old.save("Keep-Me", {"a": 1}, expected_version=0)
    assert old.db.engine is not None
    with old.db.engine.begin() as conn:  # as wfnb before schema 4 left it
        for kind in ("insert", "delete", "update"):
            conn.execute(sa.text(f'DROP TRIGGER "{old.table_name}_search_{kind}"'))
        conn.execute(sa.text(f'DROP TABLE "{old.table_name}_search"'))
        conn.execute(sa.text(f"UPDATE \"{old.table_name}_meta\" SET value = '3' "
                             "WHERE key = 'schema_version'"))
    old.close()
    upgraded = make_storage()
    assert upgraded.schema_version == _schema.MIGRATIONS[-1][0]
    assert [s.session_id for s in upgraded.list_sessions(search="KEEP-m")] == ["Keep-Me"]
    upgraded.save("keep-too", {}, expected_version=0)
    assert upgraded.count_sessions(search="keep") == 2
