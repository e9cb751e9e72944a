"""The statements every load and save runs, as driver SQL on pooled DBAPI connections.

Loads and saves are wfnb's hot path: building SQLAlchemy statements per call costs more than the
database work for small states. These few statements are written once per storage, in the
driver's parameter style, and run on the connection SQLAlchemy's pool (opened by dataset) hands
out. Everything else (listing, history, runs, migrations) uses SQLAlchemy Core.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from wfnb.storage._schema import Tables

_SESSION = "workflow_name, version, state_bytes, created_at, updated_at"
_VERSION = "version, base_version, data, tagged, state_bytes, created_at"


class HotPath:
    """Prepared SQL for reading a session's chain of versions and for one compare-and-swap save."""

    def __init__(self, engine: sa.Engine, tables: Tables) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self.error: type[Exception] = engine.dialect.loaded_dbapi.Error
        self._disconnect: type[Exception] = engine.dialect.loaded_dbapi.OperationalError
        quote = engine.dialect.identifier_preparer.quote
        s, v = quote(tables.sessions.name), quote(tables.versions.name)

        def p(name: str) -> str:
            return placeholder(engine, name)

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
            f"updated_at{jsonb_column}) VALUES ({p('sid')}, {p('wf')}, 1, {p('bytes')}, "
            f"{p('now')}, {p('now')}{jsonb_value}) "
            "ON CONFLICT (session_id) DO NOTHING RETURNING version, created_at"
        )
        self.update_session = (
            f"UPDATE {s} SET version = {p('new')}, state_bytes = {p('bytes')}, "
            f"updated_at = {p('now')}, workflow_name = COALESCE({p('wf')}, workflow_name)"
            f"{jsonb_set} WHERE session_id = {p('sid')} AND version = {p('expected')} "
            "RETURNING version, created_at"
        )
        self.select_version = f"SELECT version FROM {s} WHERE session_id = {p('sid')}"
        self.select_has_version = (
            f"SELECT 1 FROM {v} WHERE session_id = {p('sid')} AND version = {p('v')}"
        )
        self.insert_version = (
            f"INSERT INTO {v} (session_id, version, base_version, data, tagged, state_bytes, "
            f"source, run_id, created_at) VALUES ({p('sid')}, {p('new')}, {p('base')}, "
            f"{p('data')}, {p('tagged')}, {p('bytes')}, {p('source')}, {p('run')}, {p('now')})"
        )

    @contextlib.contextmanager
    def _pooled(self, *, binary: bool) -> Iterator[tuple[Any, Any]]:
        """A pooled DBAPI connection and a cursor on it; a dropped server connection is
        invalidated (not handed out again)."""
        pooled = self._engine.raw_connection()
        try:
            connection: Any = pooled.driver_connection
            # psycopg reads bytea in binary: as text it is hex, twice the state in the result
            cursor = connection.cursor(binary=True) if binary and not self._sqlite else (
                connection.cursor()
            )
            yield connection, cursor
        except self._disconnect:
            pooled.invalidate()
            raise
        finally:
            pooled.close()

    @contextlib.contextmanager
    def transaction(self, *, write: bool) -> Iterator[Any]:
        """A DBAPI cursor inside one transaction (BEGIN IMMEDIATE for SQLite writes)."""
        with self._pooled(binary=not write) as (connection, cursor):
            if self._sqlite:
                cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            elif not write:  # one snapshot for the session row and its history rows, so a
                # concurrent save + prune cannot remove the version between the two reads
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            try:
                yield cursor
            except BaseException:
                if self._sqlite:
                    cursor.execute("ROLLBACK")
                else:
                    connection.rollback()
                raise
            if self._sqlite:
                cursor.execute("COMMIT")
            elif write:
                connection.commit()
            else:
                connection.rollback()

    def execute(self, statement: str, values: dict[str, Any]) -> Any:
        """Run one statement as a transaction of its own (the cheapest round trip: no BEGIN);
        returns the first row it gives, if any."""
        with self._pooled(binary=True) as (connection, cursor):
            try:
                cursor.execute(statement, values)
                row = cursor.fetchone() if cursor.description is not None else None
            except BaseException:
                if not self._sqlite:
                    connection.rollback()
                raise
            if not self._sqlite:
                connection.commit()
            return row


def placeholder(engine: sa.Engine, name: str) -> str:
    """The driver's spelling of the named parameter ``name`` (sqlite3: ``:x``, psycopg:
    ``%(x)s``)."""
    return f":{name}" if engine.dialect.name == "sqlite" else f"%({name})s"


def jsonb_copy(document: str) -> str | None:
    """What PostgreSQL's queryable JSONB copy of a state gets: None when JSONB cannot hold it
    (a NUL character, written ``\\u0000`` in JSON text)."""
    return None if "\\u0000" in document else document
