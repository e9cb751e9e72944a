"""Database: one table family in one database, and the one way wfnb's storage talks to it.

It owns the engine (opened through dataset, see _engine.py), the tables (_schema.py, migrated on
open), the prepared hot-path SQL (_sql.py) and every transaction: :meth:`Database.transaction`
is the only place that begins, commits or rolls back, and the only place that turns a database
error into :class:`~wfnb.StorageError` naming the action, table and session. Rows come back as
small named records (``SessionRow``, ``VersionRow``, ``Swapped`` in _sql.py), never as
tuples read by position.

The storage modules are written against it, each owning one concern, and
:class:`~wfnb.storage.WorkflowStorage` is the facade over them:

- ``_sessions.py``  read and compare-and-swap save of the current state, delete, restore
- ``_history.py``   version rows: rebuilding a version from its chain, listing, pruning
- ``_listing.py``   pages of sessions, filters, lookups of ids
- ``_runs.py``      the runs table
- ``_steps.py``     the steps table (``@step`` records): lookups, records, retention, transfer rows
- ``_transfer.py``  export and import as JSON lines; ``_frame.py`` pandas

A new table follows the pattern ``steps`` did:

1. add it to :class:`~wfnb.storage._schema.Tables` and a migration to ``MIGRATIONS``;
2. write ``_steps.py`` as functions taking ``db: Database`` first, each doing its work in
   ``with db.transaction("record the step", session_id, write=True) as tx:`` and running
   SQLAlchemy Core through ``tx.execute(...)`` (read columns by name: ``row.status``);
   a statement on the hot path gets prepared SQL, and a named row type, in _sql.py, and a
   method on :class:`Transaction`;
3. expose it through a documented method of WorkflowStorage; front ends import only
   ``wfnb.storage``.
"""

from __future__ import annotations

import zlib
from types import TracebackType
from typing import Any

import dataset
import sqlalchemy as sa

from wfnb._errors import StorageError
from wfnb.storage._engine import begin, cause, end, open_database, shown_url
from wfnb.storage._schema import MIGRATIONS, Tables, check_table_name, migrate, search_table
from wfnb.storage._sql import ServableStep, SessionRow, Statements, Swapped, VersionRow


class Transaction:
    """One transaction, as a context manager (``with db.transaction(...) as tx:``): the hot
    path's prepared statements, and SQLAlchemy Core on the same connection.

    A class rather than a generator-based context manager: loads and saves open one each.
    """

    def __init__(self, db: Database, action: str, session_id: str | None, write: bool) -> None:
        self.db, self.action, self.session_id, self.write = db, action, session_id, write
        self._sql = db.statements
        self._pooled: Any = None  # the pool's connection the transaction is open on
        self._cursor: Any = None  # a DBAPI cursor on it, for the prepared SQL
        self._core: sa.Connection | None = None

    def __enter__(self) -> Transaction:
        db = self.db
        try:
            self._pooled = db.engine.raw_connection()
            driver: Any = self._pooled.driver_connection
            # psycopg reads bytea in binary: as text it is hex, twice the state in the result
            self._cursor = driver.cursor(binary=True) if db.binary_reads and not self.write else (
                driver.cursor())
            begin(self._cursor, db.dialect, write=self.write)
        except BaseException as error:
            self._release(error)
            if self._maps(error):
                raise self._mapped(error) from error
            raise
        return self

    def __exit__(
        self,
        _kind: type[BaseException] | None,
        error: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        commit = error is None and self.write
        try:
            if self._core is not None and self._core.in_transaction():  # SQLAlchemy's too
                (self._core.commit if commit else self._core.rollback)()
            else:
                end(self._cursor, self.db.dialect, commit=commit)
        except BaseException as failed:
            # the rollback after a lost connection fails too: "the connection is lost" is
            # what the caller needs to hear (the statement's own error is chained)
            self._release(failed)
            if self._maps(failed):
                raise self._mapped(failed) from failed
            raise
        self._release(error)
        if error is not None and self._maps(error):
            raise self._mapped(error) from error

    def _release(self, error: BaseException | None) -> None:
        """Hand the connection back to the pool (or drop it, when the server went away)."""
        if self._pooled is None:
            return
        if isinstance(error, self.db.disconnect_error):
            self._pooled.invalidate()  # a dropped server connection is not handed out again
        (self._core if self._core is not None else self._pooled).close()
        self._pooled = None

    def _maps(self, error: BaseException) -> bool:
        return isinstance(error, (sa.exc.SQLAlchemyError, OSError, self.db.driver_error))

    def _mapped(self, error: BaseException) -> StorageError:
        return StorageError(f"could not {self.action}: {cause(error)}", table=self.db.name,
                            session_id=self.session_id)

    @property
    def connection(self) -> sa.Connection:
        """A SQLAlchemy connection on the same DBAPI connection, inside this transaction (made
        when first asked for: loads and saves do without it)."""
        if self._core is None:
            self._core = sa.Connection(self.db.engine, connection=self._pooled)
        return self._core

    def execute(self, statement: sa.Executable) -> sa.CursorResult[Any]:
        """Run a SQLAlchemy Core statement; read its rows by column name."""
        return self.connection.execute(statement)

    def session(self, session_id: str) -> SessionRow | None:
        self._cursor.execute(self._sql.select_session, {"sid": session_id})
        row = self._cursor.fetchone()
        return SessionRow._make(row) if row is not None else None

    def current_version(self, session_id: str) -> int | None:
        self._cursor.execute(self._sql.select_version, {"sid": session_id})
        row = self._cursor.fetchone()
        return int(row[0]) if row is not None else None

    def chain(self, session_id: str, version: int) -> list[VersionRow]:
        """The rows ``version`` is rebuilt from: the newest full row at or before it, then the
        deltas after it, in order (fewer or none when rows are missing)."""
        self._cursor.execute(self._sql.select_chain, {"sid": session_id, "v": version})
        return list(map(VersionRow._make, self._cursor.fetchall()))

    def deleted_version(self, session_id: str) -> int:
        """The last version a deleted session under this id reached (0: none was deleted)."""
        self._cursor.execute(self._sql.select_deleted, {"sid": session_id})
        row = self._cursor.fetchone()
        return int(row[0]) if row is not None else 0

    def has_version(self, session_id: str, version: int) -> bool:
        self._cursor.execute(self._sql.select_has_version, {"sid": session_id, "v": version})
        return self._cursor.fetchone() is not None

    def create_session(
        self, session_id: str, workflow_name: str | None, document: bytes, now: float
    ) -> Swapped | None:
        """Insert the session row at version 1, or after the last version of a session deleted
        under this id (version numbers are never reused); None when the session exists."""
        return self._swap(self._sql.insert_session, {
            "sid": session_id, "wf": workflow_name, "bytes": len(document), "now": now,
            "new": self.deleted_version(session_id) + 1,
        }, document)

    def update_session(
        self, session_id: str, workflow_name: str | None, document: bytes, now: float,
        expected: int,
    ) -> Swapped | None:
        """Move the session row from ``expected`` to the next version; None when it is not at
        ``expected`` (or gone)."""
        return self._swap(self._sql.update_session, {
            "sid": session_id, "wf": workflow_name, "bytes": len(document), "now": now,
            "new": expected + 1, "expected": expected,
        }, document)

    def _swap(self, sql: str, values: dict[str, Any], document: bytes) -> Swapped | None:
        if self._sql.keeps_jsonb:
            values["json"] = jsonb_copy(document.decode())
        self._cursor.execute(sql, values)
        row = self._cursor.fetchone()
        return Swapped._make(row) if row is not None else None

    def insert_version(
        self, session_id: str, version: int, *, base: int | None, data: bytes, tagged: bool,
        state_bytes: int, source: str, run_id: str | None, now: float,
        forked_from: tuple[str, int] | None = None,
    ) -> None:
        """A version row; ``forked_from`` (session, version) only for a fork's first one."""
        origin_session, origin_version = forked_from if forked_from is not None else (None, None)
        self._cursor.execute(self._sql.insert_version, {
            "sid": session_id, "new": version, "base": base, "data": data, "tagged": tagged,
            "bytes": state_bytes, "source": source, "run": run_id, "now": now,
            "fsid": origin_session, "fv": origin_version,
        })

    def servable_step(self, scope: str, values: dict[str, Any]) -> ServableStep | None:
        """The record a call with ``values["key"]`` is served from, in ``scope``."""
        self._cursor.execute(self._sql.select_servable_step[scope], values)
        row = self._cursor.fetchone()
        return ServableStep._make(row) if row is not None else None

    def insert_steps(self, rows: list[dict[str, Any]]) -> None:
        """New step records (every column of STEP_COLUMNS, by name)."""
        self._cursor.executemany(self._sql.insert_step, rows)

    def finish_step(self, values: dict[str, Any]) -> None:
        """An executed call's end: status, output, tagged, error, ended_at (by step_id)."""
        self._cursor.execute(self._sql.finish_step, values)


class Database:
    """One table family (``name``, ``name_versions``, ``name_runs``, ``name_steps``,
    ``name_meta``) in the database at ``url``: created or upgraded on open, used through
    :meth:`transaction`.

    ``db`` is the underlying :class:`dataset.Database`, for users' ad-hoc queries.
    """

    def __init__(self, name: str, url: str, *, busy_timeout: float, synchronous: str) -> None:
        self.name = check_table_name(name)
        self.url = url
        self.tables = Tables.define(name)
        try:
            self.db: dataset.Database = open_database(
                url, busy_timeout=busy_timeout, synchronous=synchronous
            )
            assert self.db.engine is not None
            self.engine: sa.Engine = self.db.engine
            self.dialect = self.engine.dialect.name
            self.binary_reads = self.dialect == "postgresql"
            self.driver_error: type[Exception] = self.engine.dialect.loaded_dbapi.Error
            self.disconnect_error: type[Exception] = (
                self.engine.dialect.loaded_dbapi.OperationalError
            )
            self.statements = Statements(self.engine, self.tables)
            with self.transaction("upgrade the tables", write=True) as tx:
                if self.dialect == "postgresql":  # one migration at a time
                    tx.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_key(name))))
                self.schema_version = migrate(tx.connection, self.tables, MIGRATIONS)
                self.search_table = search_table(tx.connection, self.tables)
        except StorageError as exc:
            if exc.__cause__ is None:  # not the database failing: a newer schema, say
                raise
            raise StorageError(f"cannot open {self.where}: {cause(exc.__cause__)}",
                               table=name) from exc.__cause__
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            raise StorageError(f"cannot open {self.where}: {cause(exc)}", table=name) from exc

    @property
    def where(self) -> str:
        """The database URL, its password hidden."""
        return shown_url(self.url)

    def transaction(
        self, action: str, session_id: str | None = None, *, write: bool = False
    ) -> Transaction:
        """``with db.transaction("save the session", sid, write=True) as tx:``: one transaction
        (BEGIN IMMEDIATE for SQLite writes; a single snapshot for PostgreSQL reads), committed
        when the block ends, rolled back when it raises (Ctrl-C too). A database error becomes
        StorageError: "could not ``action``: cause (table, session)"."""
        return Transaction(self, action, session_id, write)

    def close(self) -> None:
        """Release the database connections."""
        self.db.close()


def jsonb_copy(document: str) -> str | None:
    """What PostgreSQL's queryable JSONB copy of a state gets: None when JSONB cannot hold it
    (a NUL character, written ``\\u0000`` in JSON text)."""
    return None if "\\u0000" in document else document


def _lock_key(name: str) -> int:
    """A stable advisory-lock key for one table family (serializes concurrent migrations)."""
    return zlib.crc32(f"wfnb:{name}".encode())
