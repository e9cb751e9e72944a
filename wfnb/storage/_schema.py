"""The tables wfnb keeps for one ``table_name``, and the migrations that create and upgrade them.

For ``table_name="t"``:

- ``t``           one row per session: its current version and metadata; on PostgreSQL also
                  ``state``, a JSONB copy of the current state for SQL queries (JSONB reorders
                  keys and cannot hold "\u0000", so it is a view for queries, never read back)
- ``t_versions``  one row per saved version: the state as exact JSON bytes, or a delta on the
                  version before it (see _delta.py); the current state is the newest full row
                  with the deltas after it, so a save writes only what changed. A fork's first
                  version names the session and version it was forked from
                  (``forked_from_session``, ``forked_from_version``; schema 7, see _fork.py)
- ``t_runs``      one row per run: status, input, output, error, timings, tokens used, and
                  who runs it (host, pid, process start; schema 6), and for a run that
                  asked (``Workflow.ask``), its question while it waits and the answers it
                  was given, as JSON (schema 8)
- ``t_steps``     one row per step a run executed or was served (see _steps.py): its key,
                  status, output (exact JSON bytes, as states are stored), error, timings
- ``t_meta``      key/value rows; ``schema_version`` says which migrations have run,
                  ``last_import`` when sessions were last imported (the change mark)
- ``t_deleted``   one row per deleted session id: the last version it reached (schema 5), so
                  a session created again under that id numbers on from there and a writer
                  still holding a version of the deleted one can never match the new one;
                  indexed by ``deleted_at`` (schema 9) for the change mark (_watch.py)

Schema 4 indexes session ids for substring search (PostgreSQL: a pg_trgm GIN index; SQLite:
an FTS5 trigram table ``t_search`` kept by triggers); where that cannot be created (no privilege
for the extension, an SQLite built without FTS5), the tables are still upgraded, a warning
says what to run as a privileged user, and searches scan as before (same results, slower).

Migrations are ordered and idempotent, run in one transaction on open; a database whose
schema_version is newer than this wfnb knows is refused rather than guessed at.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from wfnb._errors import InvalidNameError, SchemaVersionError, StorageError
from wfnb.storage import _search

# 46: the longest derived name, ix_<name>_workflow_name, fits PostgreSQL's 63-character limit
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,45}")


def check_table_name(name: object) -> str:
    """The table name, if it is a plain identifier (letters, digits, _; at most 46 characters)."""
    if not isinstance(name, str) or not _TABLE_NAME.fullmatch(name):
        shown = repr(name) if len(repr(name)) <= 60 else repr(name)[:57] + "..."
        raise InvalidNameError(
            f"table_name {shown} is not allowed: use letters, digits and '_', "
            "starting with a letter or '_', at most 46 characters"
        )
    return name


def asked(runs: sa.Table) -> sa.ColumnElement[bool]:
    """The runs a question touched: waiting for an answer, or given answers (the predicate of
    their partial index; a query names it as is, so both databases use the index)."""
    return sa.or_(runs.c.status == "waiting", runs.c.answers.is_not(None))


@dataclass(frozen=True)
class Tables:
    """SQLAlchemy Core tables for one table_name family."""

    name: str
    sessions: sa.Table
    versions: sa.Table
    runs: sa.Table
    meta: sa.Table
    steps: sa.Table
    deleted: sa.Table

    @classmethod
    def define(cls, name: str) -> Tables:
        metadata = sa.MetaData()
        sessions = sa.Table(
            name, metadata,
            sa.Column("session_id", sa.Text, primary_key=True),
            sa.Column("workflow_name", sa.Text, nullable=True),
            sa.Column("version", sa.Integer, nullable=False),
            sa.Column("state_bytes", sa.Integer, nullable=False),
            sa.Column("created_at", sa.Float, nullable=False),
            sa.Column("updated_at", sa.Float, nullable=False),
            sa.Index(f"ix_{name}_updated_at", "updated_at"),
            sa.Index(f"ix_{name}_workflow_name", "workflow_name", "updated_at"),
        )
        versions = sa.Table(
            f"{name}_versions", metadata,
            sa.Column("session_id", sa.Text, primary_key=True),
            sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("base_version", sa.Integer, nullable=True),  # NULL: data is a full state
            sa.Column("data", sa.LargeBinary, nullable=False),
            sa.Column("tagged", sa.Boolean, nullable=False),  # holds tagged extra types
            sa.Column("state_bytes", sa.Integer, nullable=False),
            sa.Column("source", sa.Text, nullable=False),
            sa.Column("run_id", sa.Text, nullable=True),
            sa.Column("created_at", sa.Float, nullable=False),
            # where a fork's first version came from (schema 7); NULL for every other version
            sa.Column("forked_from_session", sa.Text, nullable=True),
            sa.Column("forked_from_version", sa.Integer, nullable=True),
        )
        runs = sa.Table(
            f"{name}_runs", metadata,
            sa.Column("run_id", sa.Text, primary_key=True),
            sa.Column("session_id", sa.Text, nullable=False),
            sa.Column("workflow_name", sa.Text, nullable=True),
            sa.Column("status", sa.Text, nullable=False),
            sa.Column("input", sa.Text, nullable=True),
            sa.Column("output", sa.Text, nullable=True),
            sa.Column("error", sa.Text, nullable=True),
            sa.Column("version", sa.Integer, nullable=True),
            sa.Column("started_at", sa.Float, nullable=False),
            sa.Column("ended_at", sa.Float, nullable=True),
            sa.Column("input_tokens", sa.Integer, nullable=True),  # schema 2
            sa.Column("output_tokens", sa.Integer, nullable=True),  # schema 2
            # who runs it (schema 6): a run whose process is gone becomes "abandoned"
            sa.Column("host", sa.Text, nullable=True),
            sa.Column("pid", sa.Integer, nullable=True),
            sa.Column("process_start", sa.Text, nullable=True),
            # a run that asked (schema 8): its question while waiting, the answers it was given
            sa.Column("question", sa.Text, nullable=True),
            sa.Column("answers", sa.Text, nullable=True),
            sa.Index(f"ix_{name}_runs_session", "session_id", "started_at"),
        )
        # schema 8: the runs a question touched (waiting, or given answers), so that starting
        # a run finds one to continue without walking the session's other runs
        sa.Index(f"ix_{name}_runs_asked", runs.c.session_id, runs.c.started_at,
                 sqlite_where=asked(runs), postgresql_where=asked(runs))
        meta = sa.Table(
            f"{name}_meta", metadata,
            sa.Column("key", sa.Text, primary_key=True),
            sa.Column("value", sa.Text, nullable=False),
        )
        steps = sa.Table(
            f"{name}_steps", metadata,
            sa.Column("step_id", sa.Text, primary_key=True),
            sa.Column("session_id", sa.Text, nullable=False),
            sa.Column("workflow_name", sa.Text, nullable=True),
            sa.Column("run_id", sa.Text, nullable=True),
            sa.Column("key", sa.Text, nullable=False),
            sa.Column("name", sa.Text, nullable=False),
            sa.Column("status", sa.Text, nullable=False),
            sa.Column("served_from", sa.Text, nullable=True),  # NULL: the body ran
            sa.Column("output", sa.LargeBinary, nullable=True),
            sa.Column("tagged", sa.Boolean, nullable=False),
            sa.Column("error", sa.Text, nullable=True),
            sa.Column("started_at", sa.Float, nullable=False),
            sa.Column("ended_at", sa.Float, nullable=True),
            sa.Index(f"ix_{name}_steps_time", "session_id", "started_at"),
        )
        # lookups read only completed records whose body ran: served records (one per call of
        # every later run, same key) stay out of these indexes, so a lookup never walks them
        servable = sa.and_(steps.c.status == "completed", steps.c.served_from.is_(None))
        for index, scope in (("key", "session_id"), ("wf_key", "workflow_name")):
            sa.Index(f"ix_{name}_steps_{index}", steps.c[scope], steps.c.key, steps.c.ended_at,
                     steps.c.step_id, sqlite_where=servable, postgresql_where=servable)
        deleted = sa.Table(
            f"{name}_deleted", metadata,
            sa.Column("session_id", sa.Text, primary_key=True),
            sa.Column("version", sa.Integer, nullable=False),  # the deleted session's last
            sa.Column("deleted_at", sa.Float, nullable=False),
            sa.Index(f"ix_{name}_deleted_at", "deleted_at"),  # schema 9: the change mark
        )
        return cls(name, sessions, versions, runs, meta, steps, deleted)


def _create_v1(conn: sa.Connection, tables: Tables) -> None:
    for table in (tables.meta, tables.sessions, tables.versions, tables.runs):
        table.create(conn, checkfirst=True)
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(f'ALTER TABLE "{tables.name}" ADD COLUMN IF NOT EXISTS state jsonb'))


def _add_columns(conn: sa.Connection, table: sa.Table, columns: dict[str, str]) -> None:
    """ALTER TABLE ``table`` ADD each of ``columns`` (name: SQL type) it does not have yet."""
    present = {column["name"] for column in sa.inspect(conn).get_columns(table.name)}
    for column, kind in columns.items():
        if column not in present:
            conn.execute(sa.text(f'ALTER TABLE "{table.name}" ADD COLUMN {column} {kind}'))


def _add_run_tokens_v2(conn: sa.Connection, tables: Tables) -> None:
    """Runs record the tokens a model used (None when it did not say)."""
    _add_columns(conn, tables.runs, {"input_tokens": "INTEGER", "output_tokens": "INTEGER"})


def _add_deleted_v5(conn: sa.Connection, tables: Tables) -> None:
    """Deleted sessions leave their last version number behind (never reused)."""
    tables.deleted.create(conn, checkfirst=True)


def _add_run_owner_v6(conn: sa.Connection, tables: Tables) -> None:
    """Runs record the host, pid and process start of the process running them."""
    _add_columns(conn, tables.runs, {"host": "TEXT", "pid": "INTEGER", "process_start": "TEXT"})


def _add_fork_origin_v7(conn: sa.Connection, tables: Tables) -> None:
    """Versions record the session and version a fork was made from (NULL otherwise)."""
    _add_columns(conn, tables.versions,
                 {"forked_from_session": "TEXT", "forked_from_version": "INTEGER"})


def _add_run_questions_v8(conn: sa.Connection, tables: Tables) -> None:
    """Runs record the question they wait for and the answers they were given (JSON); an index
    finds a session's waiting runs without walking all its runs."""
    _add_columns(conn, tables.runs, {"question": "TEXT", "answers": "TEXT"})
    for index in tables.runs.indexes:
        if index.name == f"ix_{tables.name}_runs_asked":
            index.create(conn, checkfirst=True)


def _index_deletes_v9(conn: sa.Connection, tables: Tables) -> None:
    """The latest delete is an index lookup, for the cheap change mark (see _watch.py)."""
    for index in tables.deleted.indexes:
        index.create(conn, checkfirst=True)


def _add_steps_v3(conn: sa.Connection, tables: Tables) -> None:
    """Steps: one row per ``@step`` call of a run (see _steps.py)."""
    tables.steps.create(conn, checkfirst=True)


def _add_trigram_search_v4(conn: sa.Connection, tables: Tables) -> None:
    """Index the folded session id by trigrams, so searching a million ids is an index lookup:
    a pg_trgm GIN index on PostgreSQL, an FTS5 trigram table ``T_search`` on SQLite. Tried in a
    savepoint: without the privilege (or an SQLite without FTS5), the upgrade goes on and
    searches scan (a warning names the SQL to run)."""
    if conn.dialect.name == "postgresql":
        statements = [f"CREATE EXTENSION IF NOT EXISTS {_search.TRIGRAM_EXTENSION}",
                      _search.trigram_index_sql(tables.name)]
    else:
        statements = _search.sqlite_search_sql(tables.name)
    conn.execute(sa.text("SAVEPOINT wfnb_trigram"))
    try:
        for statement in statements:
            conn.execute(sa.text(statement))
    except sa.exc.DBAPIError as error:
        conn.execute(sa.text("ROLLBACK TO SAVEPOINT wfnb_trigram"))
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        warnings.warn(
            f"table {tables.name!r}: no trigram index for session search ({reason}); searches "
            f"still work but scan every row. As a user allowed to, run: {'; '.join(statements)}",
            RuntimeWarning, stacklevel=2,
        )
    else:
        conn.execute(sa.text("RELEASE SAVEPOINT wfnb_trigram"))


Migration = Callable[[sa.Connection, Tables], None]

#: (schema version, migration) in order; each brings the tables from the version before it.
MIGRATIONS: list[tuple[int, Migration]] = [
    (1, _create_v1), (2, _add_run_tokens_v2), (3, _add_steps_v3), (4, _add_trigram_search_v4),
    (5, _add_deleted_v5), (6, _add_run_owner_v6), (7, _add_fork_origin_v7),
    (8, _add_run_questions_v8), (9, _index_deletes_v9),
]


def refuse_foreign_tables(conn: sa.Connection, tables: Tables) -> None:
    """StorageError naming a table of the family that exists but is not wfnb's (another
    program's ``t_runs``, say): creating the rest beside it would "work", then every save would
    fail. A family whose ``_meta`` records a schema version is wfnb's and is not looked into."""
    inspector = sa.inspect(conn)
    for table in (tables.meta, tables.sessions, tables.versions, tables.runs, tables.steps,
                  tables.deleted):
        if not inspector.has_table(table.name):
            continue
        found = {column["name"] for column in inspector.get_columns(table.name)}
        missing = [column.name for column in table.columns if column.name not in found]
        if missing:
            raise StorageError(
                f"table {table.name!r} exists but is not wfnb's (it has no column "
                f"{', '.join(repr(name) for name in missing)}): choose another table name; "
                "nothing was changed",
                table=tables.name,
            )
        if table is tables.meta and stored_schema_version(conn, tables) > 0:
            return  # wfnb's own (a later migration may add columns the others lack so far)


def search_table(conn: sa.Connection, tables: Tables) -> str | None:
    """SQLite: the FTS5 table searches look ids up in, if schema 4 could make it."""
    name = f"{tables.name}_search"
    if conn.dialect.name == "sqlite" and sa.inspect(conn).has_table(name):
        return name
    return None


def stored_schema_version(conn: sa.Connection, tables: Tables) -> int:
    """The schema_version recorded in the database; 0 when the tables do not exist yet."""
    if not sa.inspect(conn).has_table(tables.meta.name):
        return 0
    value = conn.execute(
        sa.select(tables.meta.c.value).where(tables.meta.c.key == "schema_version")
    ).scalar()
    return int(value) if value is not None else 0


def migrate(conn: sa.Connection, tables: Tables, migrations: list[tuple[int, Migration]]) -> int:
    """Bring the tables up to the newest schema inside the caller's transaction; returns it."""
    latest = migrations[-1][0]
    refuse_foreign_tables(conn, tables)
    current = stored_schema_version(conn, tables)
    if current > latest:
        raise SchemaVersionError(
            f"the database has schema version {current}, newer than this wfnb knows ({latest}); "
            "upgrade wfnb to open it (nothing was changed)",
            table=tables.name,
        )
    for version, step in migrations:
        if version > current:
            step(conn, tables)
            _set_schema_version(conn, tables, version, first=current == 0 and version == 1)
            current = version
    return current


def _set_schema_version(conn: sa.Connection, tables: Tables, version: int, *, first: bool) -> None:
    meta = tables.meta
    if first:
        conn.execute(sa.insert(meta).values(key="schema_version", value=str(version)))
    else:
        conn.execute(
            sa.update(meta).where(meta.c.key == "schema_version").values(value=str(version))
        )
