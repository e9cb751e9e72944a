"""The statements every load and save runs, as driver SQL written once per storage.

Loads and saves are wfnb's hot path: building SQLAlchemy statements per call costs more than the
database work for small states. These few statements are written in the driver's parameter
style and run by :class:`~wfnb.storage._database.Transaction` on the DBAPI cursor of its
connection, inside the same transaction as any Core statement. Everything else (listing,
history, runs, migrations) uses SQLAlchemy Core. The column lists match the named rows there.
"""

from __future__ import annotations

from typing import NamedTuple

import sqlalchemy as sa

from wfnb.storage._schema import Tables


class SessionRow(NamedTuple):
    """A session's row, without its id."""

    workflow_name: str | None
    version: int
    state_bytes: int
    created_at: float
    updated_at: float


class VersionRow(NamedTuple):
    """One version row of a chain: a full state (``base_version`` None) or a delta on it."""

    version: int
    base_version: int | None
    data: bytes
    tagged: bool
    state_bytes: int
    created_at: float


class Swapped(NamedTuple):
    """A session row as a compare-and-swap left it."""

    version: int
    created_at: float


class ServableStep(NamedTuple):
    """The step record a call is served from: its id and its output document."""

    step_id: str
    output: bytes
    tagged: bool


#: the columns of a step record, in the order the prepared INSERT takes them
STEP_COLUMNS = ("step_id", "session_id", "workflow_name", "run_id", "key", "name", "status",
                "served_from", "output", "tagged", "error", "started_at", "ended_at")


# the columns each statement selects are the fields of its row type, in order
_SESSION = ", ".join(SessionRow._fields)
_VERSION = ", ".join(VersionRow._fields)
_SWAPPED = ", ".join(Swapped._fields)


class Statements:
    """Prepared SQL for reading a session's chain of versions and for one compare-and-swap save."""

    def __init__(self, engine: sa.Engine, tables: Tables) -> None:
        self._sqlite = engine.dialect.name == "sqlite"
        quote = engine.dialect.identifier_preparer.quote
        s, v = quote(tables.sessions.name), quote(tables.versions.name)
        d = quote(tables.deleted.name)

        def p(name: str) -> str:
            return f":{name}" if self._sqlite else f"%({name})s"

        self.select_session = f"SELECT {_SESSION} FROM {s} WHERE session_id = {p('sid')}"
        self.select_chain = (
            f"SELECT {_VERSION} FROM {v} WHERE session_id = {p('sid')} AND version <= {p('v')} "
            f"AND version >= (SELECT MAX(version) FROM {v} WHERE session_id = {p('sid')} "
            f"AND version <= {p('v')} AND base_version IS NULL) ORDER BY version"
        )
        # PostgreSQL keeps a JSONB copy of the current state for SQL queries (see _schema.py).
        jsonb_column = "" if self._sqlite else ", state"
        jsonb_value = "" if self._sqlite else f", CAST({p('json')} AS jsonb)"
        jsonb_set = "" if self._sqlite else f", state = CAST({p('json')} AS jsonb)"
        self.keeps_jsonb = not self._sqlite
        self.insert_session = (
            f"INSERT INTO {s} (session_id, workflow_name, version, state_bytes, created_at, "
            f"updated_at{jsonb_column}) VALUES ({p('sid')}, {p('wf')}, {p('new')}, {p('bytes')}, "
            f"{p('now')}, {p('now')}{jsonb_value}) "
            f"ON CONFLICT (session_id) DO NOTHING RETURNING {_SWAPPED}"
        )
        self.update_session = (
            f"UPDATE {s} SET version = {p('new')}, state_bytes = {p('bytes')}, "
            f"updated_at = {p('now')}, workflow_name = COALESCE({p('wf')}, workflow_name)"
            f"{jsonb_set} WHERE session_id = {p('sid')} AND version = {p('expected')} "
            f"RETURNING {_SWAPPED}"
        )
        self.select_deleted = f"SELECT version FROM {d} WHERE session_id = {p('sid')}"
        self.select_version = f"SELECT version FROM {s} WHERE session_id = {p('sid')}"
        self.select_has_version = (
            f"SELECT 1 FROM {v} WHERE session_id = {p('sid')} AND version = {p('v')}"
        )
        self.insert_version = (
            f"INSERT INTO {v} (session_id, version, base_version, data, tagged, state_bytes, "
            f"source, run_id, created_at, forked_from_session, forked_from_version) VALUES "
            f"({p('sid')}, {p('new')}, {p('base')}, {p('data')}, {p('tagged')}, {p('bytes')}, "
            f"{p('source')}, {p('run')}, {p('now')}, {p('fsid')}, {p('fv')})"
        )
        # steps (see _steps.py): the servable record of a key, newest first, in the session or
        # in the workflow's sessions; the partial indexes of _schema.py hold exactly these rows
        st = quote(tables.steps.name)
        servable = (
            f"SELECT {', '.join(ServableStep._fields)} FROM {st} WHERE key = {p('key')} "
            "AND status = 'completed' AND served_from IS NULL AND ended_at >= "
            f"{p('since')} AND {{scope}} ORDER BY ended_at DESC, step_id DESC LIMIT 1"
        )
        self.select_servable_step = {
            "session": servable.format(scope=f"session_id = {p('sid')}"),
            "workflow": servable.format(scope=f"workflow_name = {p('wf')}"),
        }
        self.insert_step = (
            f"INSERT INTO {st} ({', '.join(STEP_COLUMNS)}) "
            f"VALUES ({', '.join(p(column) for column in STEP_COLUMNS)})"
        )
        self.finish_step = (
            f"UPDATE {st} SET status = {p('status')}, output = {p('output')}, "
            f"tagged = {p('tagged')}, error = {p('error')}, ended_at = {p('ended_at')} "
            f"WHERE step_id = {p('step_id')}"
        )
